"""The process the outbox tests run: actions inside the change and after it."""

DEAL = """
process: deal
name: Deal
entity: opportunity
stages:
  - id: qualify
    name: Qualify
    after_exit: [left]
  - id: develop
    name: Develop
    on_enter: [check]
    after_enter: [mail]
  - {id: close, name: Close}
"""
