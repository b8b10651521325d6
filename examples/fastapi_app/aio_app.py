"""The application's asyncio twin: the same tables, process and endpoints as `app.py`, on
`bpf.AsyncEngine` and SQLAlchemy's `AsyncSession` (aiosqlite, or psycopg 3 async).

Run it with ``uvicorn --factory examples.fastapi_app.aio_app:create_app`` (docs/asyncio.md).
"""

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

import sqlalchemy as sa
from examples.fastapi_app.app import (
    Action,
    Base,
    Fields,
    Move,
    NewOpportunity,
    Opportunity,
    User,
)
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

import bpf
from bpf.store.sql.aio import async_url


def create_app(url: str | None = None, process: bpf.ProcessDefinition | None = None) -> FastAPI:
    """The asyncio application on the database at ``url`` (default: ``$DATABASE_URL``, else
    ``sqlite:///opportunities.db``); the database and the engine open with the server."""
    url = async_url(url or os.environ.get("DATABASE_URL", "sqlite:///opportunities.db"))
    definition = process or bpf.standard_process("opportunity-sales")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = create_async_engine(url)
        async with db.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with bpf.AsyncEngine(url) as engine:
            await engine.register(definition)
            engine.entity("opportunity", model=Opportunity)
            app.state.db, app.state.engine = db, engine
            yield
        await db.dispose()

    app = FastAPI(title="Opportunities (asyncio)", lifespan=lifespan)
    app.state.process = definition.process

    async def current_actor(x_user: Annotated[str, Header()]) -> bpf.Actor:
        async with AsyncSession(app.state.db) as session:
            user = await session.get(User, x_user)
        if user is None:
            raise HTTPException(401, f"unknown user {x_user!r}")
        return bpf.Actor(user.name, roles=[r for r in user.roles.split(",") if r])

    Actor = Annotated[bpf.Actor, Depends(current_actor)]

    async def shown(opportunity: Opportunity, actor: bpf.Actor,
                    flow: bpf.AsyncFlow | None = None) -> dict[str, Any]:
        flow = flow or await app.state.engine.flow(opportunity, definition.process)
        columns = sa.inspect(Opportunity).column_attrs
        return {"opportunity": {c.key: getattr(opportunity, c.key) for c in columns},
                "process": await flow.view(actor)}

    async def read(session: AsyncSession, id: int) -> Opportunity:
        opportunity = await session.get(Opportunity, id)
        if opportunity is None:
            raise HTTPException(404, f"no opportunity {id}")
        return opportunity

    @app.get("/opportunities/{id}")
    async def get_opportunity(id: int, actor: Actor) -> dict[str, Any]:
        async with AsyncSession(app.state.db) as session:
            return await shown(await read(session, id), actor)

    @app.post("/opportunities", status_code=201)
    async def create_opportunity(body: NewOpportunity, actor: Actor) -> dict[str, Any]:
        engine = app.state.engine
        async with (AsyncSession(app.state.db) as session, session.begin(),
                    engine.transaction(session)):
            opportunity = Opportunity(**body.model_dump(exclude_unset=True))
            session.add(opportunity)
            await session.flush()
            flow = await engine.start(definition.process, opportunity, actor=actor)
            return await shown(opportunity, actor, flow)

    @app.patch("/opportunities/{id}")
    async def fill(id: int, body: Fields, actor: Actor) -> dict[str, Any]:
        async with AsyncSession(app.state.db) as session, session.begin():
            opportunity = await read(session, id)
            for field, value in body.model_dump(exclude_unset=True).items():
                setattr(opportunity, field, value)
            return await shown(opportunity, actor)

    @app.post("/opportunities/{id}/{action}", response_model=None)
    async def move(id: int, action: Action, body: Move, actor: Actor
                   ) -> dict[str, Any] | JSONResponse:
        engine = app.state.engine
        expected = {"actor": actor, "expected_revision": body.expected_revision}
        try:
            async with (AsyncSession(app.state.db) as session, session.begin(),
                        engine.transaction(session)):
                opportunity = await read(session, id)
                flow = await engine.flow(opportunity, definition.process)
                if action == "finish":
                    await flow.finish(body.outcome, **expected)
                else:
                    await getattr(flow, action)(**expected)
                return await shown(opportunity, actor, flow)
        except bpf.ConcurrencyError as exc:
            async with AsyncSession(app.state.db) as session:
                now = await shown(await read(session, id), actor)
            return JSONResponse(status_code=409, content={"detail": str(exc), **now})
        except bpf.StageGateError as exc:
            return JSONResponse(status_code=422, content={
                "detail": str(exc), "reason": str(exc.reason),
                "missing": [step.field for step in exc.missing], "problems": exc.problems,
            })
        except bpf.AccessDenied as exc:
            return JSONResponse(status_code=403, content={"detail": str(exc)})
        except bpf.FlowError as exc:
            return JSONResponse(status_code=422, content={"detail": str(exc),
                                                          "reason": str(exc.reason)})

    return app
