"""Public models and their route targets, addressed by model name."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from switchyard_common.config_schema import ModelSpec

from ... import repo
from ...deps import AdminDep, SessionDep, StoreDep
from ..schemas import ListOf, ModelOut, ModelUpdate
from ..validation import check_entity

router = APIRouter(prefix="/models", tags=["models"])


@router.post("", response_model=ModelOut, status_code=status.HTTP_201_CREATED)
def create_model(body: ModelSpec, store: StoreDep, _admin: AdminDep) -> ModelOut:
    spec: ModelSpec = check_entity(store.session, "models", body.model_dump())
    model = repo.models.create_model(store.session, spec=spec)
    store.commit()
    return ModelOut.of(model)


@router.get("", response_model=ListOf[ModelOut])
def list_models(session: SessionDep, _admin: AdminDep) -> ListOf[ModelOut]:
    return ListOf(data=[ModelOut.of(m) for m in repo.models.list_models(session)])


@router.get("/{name}", response_model=ModelOut)
def get_model(name: str, session: SessionDep, _admin: AdminDep) -> ModelOut:
    return ModelOut.of(repo.models.require_model(session, name=name))


@router.patch("/{name}", response_model=ModelOut)
def update_model(name: str, body: ModelUpdate, store: StoreDep, _admin: AdminDep) -> ModelOut:
    model = repo.models.require_model(store.session, name=name)
    current = ModelOut.of(model)
    merged = current.model_dump(
        include={"name", "capability", "routing", "limits", "shadow", "max_output_tokens"}
    )
    merged["targets"] = [t.model_dump() for t in current.targets]
    # Only what the body names changes; an explicit null routing is meaningful (org's).
    merged.update(body.model_dump(mode="json", include=body.model_fields_set, exclude_none=True))
    if "routing" in body.model_fields_set:
        merged["routing"] = body.routing
    spec: ModelSpec = check_entity(store.session, "models", merged)
    repo.models.set_model(store.session, model=model, spec=spec)
    store.commit()
    return ModelOut.of(model)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(name: str, store: StoreDep, _admin: AdminDep) -> Response:
    model = repo.models.require_model(store.session, name=name)
    repo.models.delete_model(store.session, model=model)
    store.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
