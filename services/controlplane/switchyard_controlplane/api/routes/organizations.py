"""Organizations, addressed by name."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from switchyard_common.config_schema import OrganizationSpec, policy_document

from ... import repo
from ...deps import AdminDep, SessionDep, StoreDep
from ..schemas import ListOf, OrganizationOut, OrganizationUpdate

router = APIRouter(prefix="/organizations", tags=["organizations"])


@router.post("", response_model=OrganizationOut, status_code=status.HTTP_201_CREATED)
def create_organization(body: OrganizationSpec, store: StoreDep, _admin: AdminDep) -> OrganizationOut:
    org = repo.organizations.create_organization(
        store.session, name=body.name, policy=policy_document(body.policy)
    )
    store.commit()
    return OrganizationOut.of(org)


@router.get("", response_model=ListOf[OrganizationOut])
def list_organizations(session: SessionDep, _admin: AdminDep) -> ListOf[OrganizationOut]:
    return ListOf(data=[OrganizationOut.of(o) for o in repo.organizations.list_organizations(session)])


@router.get("/{name}", response_model=OrganizationOut)
def get_organization(name: str, session: SessionDep, _admin: AdminDep) -> OrganizationOut:
    return OrganizationOut.of(repo.organizations.require_organization(session, name=name))


@router.patch("/{name}", response_model=OrganizationOut)
def update_organization(
    name: str, body: OrganizationUpdate, store: StoreDep, _admin: AdminDep
) -> OrganizationOut:
    org = repo.organizations.require_organization(store.session, name=name)
    repo.organizations.update_organization(store.session, org=org, policy=policy_document(body.policy))
    store.commit()
    return OrganizationOut.of(org)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_organization(name: str, store: StoreDep, _admin: AdminDep) -> Response:
    org = repo.organizations.require_organization(store.session, name=name)
    repo.organizations.delete_organization(store.session, org=org)
    store.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
