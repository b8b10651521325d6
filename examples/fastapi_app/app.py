"""The application: its tables (SQLAlchemy ORM), the process bound to them, the endpoints."""

import os
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import bpf

# -- the application's tables ----------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Opportunity(Base):
    """An opportunity, in the application's own table. bpf writes the pipeline phase
    (``stepname``) and, on finish and reactivate, ``statecode`` and ``statuscode``; the steps
    of the process read the other columns (a step without a column reads as not filled)."""

    __tablename__ = "opportunity"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    stepname: Mapped[str | None]
    statecode: Mapped[str] = mapped_column(default="open")
    statuscode: Mapped[str] = mapped_column(default="in_progress")
    parentaccountid: Mapped[str | None]
    parentcontactid: Mapped[str | None]
    budgetamount: Mapped[float | None]
    purchaseprocess: Mapped[str | None]
    decisionmaker: Mapped[bool | None]
    customerneed: Mapped[str | None]
    proposedsolution: Mapped[str | None]


class User(Base):
    """Who may call the API, with their roles (comma separated)."""

    __tablename__ = "app_user"

    name: Mapped[str] = mapped_column(primary_key=True)
    roles: Mapped[str] = mapped_column(default="")


# -- what clients send -----------------------------------------------------------------------------


class Fields(BaseModel):
    """The fields a client fills; the pipeline phase and the status are bpf's to write."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    parentaccountid: str | None = None
    parentcontactid: str | None = None
    budgetamount: float | None = None
    purchaseprocess: str | None = None
    decisionmaker: bool | None = None
    customerneed: str | None = None
    proposedsolution: str | None = None


class NewOpportunity(Fields):
    name: str


class Move(BaseModel):
    """A click on the process bar: the revision of the view the client shows, so a second
    click on the same view (or a click on a view someone else's move made stale) is refused."""

    expected_revision: int
    outcome: str | None = None  # finish: won or lost


Action = Literal["next", "previous", "finish", "abandon", "reactivate"]


# -- the application -------------------------------------------------------------------------------


def database(url: str) -> sa.Engine:
    """The application's database, where bpf keeps its tables too. A SQLite writer waits for
    another's commit (30 s) instead of failing; WAL lets reads go on meanwhile."""
    if not url.startswith("sqlite"):
        return sa.create_engine(url)
    db = sa.create_engine(url, connect_args={"timeout": 30})
    sa.event.listen(db, "connect", lambda conn, _: conn.execute("PRAGMA journal_mode=WAL"))
    return db


def create_app(url: str | None = None, process: bpf.ProcessDefinition | None = None) -> FastAPI:
    """The application on the database at ``url`` (default: ``$DATABASE_URL``, else
    ``sqlite:///opportunities.db``), running ``process`` (default: the shipped opportunity
    sales process) on its opportunities."""
    db = database(url or os.environ.get("DATABASE_URL", "sqlite:///opportunities.db"))
    Base.metadata.create_all(db)
    engine = bpf.Engine(db)
    definition = engine.register(process or bpf.standard_process("opportunity-sales"))
    # Opportunity rows are the process's records: bpf loads them, and sets their pipeline
    # field, through the session of the open engine.transaction(session).
    engine.entity("opportunity", model=Opportunity)

    app = FastAPI(title="Opportunities")
    app.state.db, app.state.engine, app.state.process = db, engine, definition.process

    def current_actor(x_user: Annotated[str, Header()]) -> bpf.Actor:
        with Session(db) as session:
            user = session.get(User, x_user)
        if user is None:
            raise HTTPException(401, f"unknown user {x_user!r}")
        return bpf.Actor(user.name, roles=[r for r in user.roles.split(",") if r])

    Actor = Annotated[bpf.Actor, Depends(current_actor)]

    def shown(opportunity: Opportunity, actor: bpf.Actor, flow: bpf.Flow | None = None
              ) -> dict[str, Any]:
        """The record and its process bar, as this actor sees them."""
        flow = flow or engine.flow(opportunity, definition.process)
        columns = sa.inspect(Opportunity).column_attrs
        return {"opportunity": {c.key: getattr(opportunity, c.key) for c in columns},
                "process": flow.view(actor)}

    def read(session: Session, id: int) -> Opportunity:
        opportunity = session.get(Opportunity, id)
        if opportunity is None:
            raise HTTPException(404, f"no opportunity {id}")
        return opportunity

    @app.get("/opportunities/{id}")
    def get_opportunity(id: int, actor: Actor) -> dict[str, Any]:
        with Session(db) as session:
            return shown(read(session, id), actor)

    @app.post("/opportunities", status_code=201)
    def create_opportunity(body: NewOpportunity, actor: Actor) -> dict[str, Any]:
        with Session(db) as session, session.begin(), engine.transaction(session):
            opportunity = Opportunity(**body.model_dump(exclude_unset=True))
            session.add(opportunity)
            session.flush()  # gives the row its id, which the flow is keyed by
            flow = engine.start(definition.process, opportunity, actor=actor)
            return shown(opportunity, actor, flow)

    @app.patch("/opportunities/{id}")
    def fill(id: int, body: Fields, actor: Actor) -> dict[str, Any]:
        with Session(db) as session, session.begin():
            opportunity = read(session, id)
            for field, value in body.model_dump(exclude_unset=True).items():
                setattr(opportunity, field, value)
            return shown(opportunity, actor)

    @app.post("/opportunities/{id}/{action}", response_model=None)
    def move(id: int, action: Action, body: Move, actor: Actor) -> dict[str, Any] | JSONResponse:
        expected = {"actor": actor, "expected_revision": body.expected_revision}
        try:
            # One transaction: the flow's move and the record's new pipeline phase commit
            # together, or neither does.
            with Session(db) as session, session.begin(), engine.transaction(session):
                opportunity = read(session, id)
                flow = engine.flow(opportunity, definition.process)
                if action == "finish":
                    flow.finish(body.outcome, **expected)
                else:
                    getattr(flow, action)(**expected)
                return shown(opportunity, actor, flow)
        except bpf.ConcurrencyError as exc:
            # A stale click: nothing changed. Send the view of now, for the client to redraw.
            with Session(db) as session:
                now = shown(read(session, id), actor)
            return JSONResponse(status_code=409, content={"detail": str(exc), **now})

    @app.exception_handler(bpf.StageGateError)
    def gate(request: Request, exc: bpf.StageGateError) -> JSONResponse:
        return JSONResponse(status_code=422, content={
            "detail": str(exc), "reason": str(exc.reason),
            "missing": [step.field for step in exc.missing], "problems": exc.problems,
        })

    @app.exception_handler(bpf.AccessDenied)
    def denied(request: Request, exc: bpf.AccessDenied) -> JSONResponse:
        return JSONResponse(status_code=403, content={"detail": str(exc)})

    @app.exception_handler(bpf.FlowError)
    def refused(request: Request, exc: bpf.FlowError) -> JSONResponse:
        # Any other refusal (no stage to go back to, finish before the last stage...).
        return JSONResponse(status_code=422, content={"detail": str(exc),
                                                      "reason": str(exc.reason)})

    return app
