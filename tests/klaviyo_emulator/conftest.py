"""Shared fixtures: a tiny account served in-process on a free port."""

from __future__ import annotations

import pytest
import requests

from klaviyo_emulator import Account, Emulator

API_KEY = "pk_test0123456789abcdef"
REVISION = "2026-07-15"


def headers(key: str = API_KEY, revision: str | None = REVISION) -> dict[str, str]:
    out = {"Authorization": f"Klaviyo-API-Key {key}", "Accept": "application/vnd.api+json"}
    if revision is not None:
        out["revision"] = revision
    return out


class Client:
    """A keep-alive requests client for the emulator with valid credentials."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update(headers())

    def get(self, path: str, params: dict | None = None, **kwargs) -> requests.Response:
        url = path if path.startswith("http") else self.base_url + path
        return self.session.get(url, params=params, timeout=kwargs.pop("timeout", 10), **kwargs)

    def all_pages(self, path: str, params: dict | None = None) -> tuple[list[dict], list[dict]]:
        """Follow links.next to the end; returns all records and every page document."""
        docs = []
        response = self.get(path, params)
        while True:
            assert response.status_code == 200, response.text
            doc = response.json()
            docs.append(doc)
            if doc["links"]["next"] is None:
                break
            response = self.get(doc["links"]["next"])
        return [r for d in docs for r in d["data"]], docs


@pytest.fixture(scope="session")
def account() -> Account:
    """The shared, never-mutated tiny account."""
    return Account.generate(seed=1, size="tiny")


@pytest.fixture(scope="session")
def emulator(account):
    with Emulator(account) as emu:
        yield emu


@pytest.fixture
def client(emulator) -> Client:
    return Client(emulator.base_url)


@pytest.fixture
def fresh():
    """A private emulator over its own tiny account, for tests that mutate state or settings."""
    with Emulator(Account.generate(seed=7, size="tiny")) as emu:
        yield emu, Client(emu.base_url)
