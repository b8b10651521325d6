"""bpf inside a web application: opportunities in the application's own table, the opportunity
sales process on them, and every move committed with the record in one transaction.

Run it with ``uvicorn --factory examples.fastapi_app:create_app`` (docs/application.md).
"""

from examples.fastapi_app.app import Base, Opportunity, User, create_app, database

__all__ = ["Base", "Opportunity", "User", "create_app", "database"]
