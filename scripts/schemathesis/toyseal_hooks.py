"""Schemathesis hooks that sign every generated request as a real family device.

A worked example of a generic HTTP tool speaking toyseal's signed-request profile
(docs/spec/signed-requests.md: RFC 9421 HTTP Message Signatures + RFC 9530 Content-Digest).
Loaded by `run.sh` beside this file as `SCHEMATHESIS_HOOKS=toyseal_hooks`, with

    TOYSEAL_FUZZ_SERVER  base URL of a running `toyseal serve` (http://127.0.0.1:PORT)
    TOYSEAL_FFI_LIB      the built cdylib of crates/toyseal-ffi (libtoyseal_ffi.so)

What it does:

1. Setup, at import (before the schema loads): through the phone SDK's Python bindings it makes
   a guardian and a toy identity (synthetic, in memory), founds a family on the server with a
   roster version 1 the guardian signs and the toy co-signs (`CloudClient.create_family`, the
   same code an app runs), and uploads two sealed envelopes. It also prepares pools of valid
   bodies: envelopes sealed by the guardian and by the toy, founding rosters of fresh
   families, the family's version 1 (stale) and a quorum-signed version 2.
2. Signing (`ToysealSignature`, a `requests` auth registered with
   `schemathesis.auth.set_from_requests`): requests applies auth to the *prepared* request,
   after the URL is encoded and the body serialized, so the signature covers the method,
   authority, path, query and body exactly as they go on the wire. Every attempt, retries
   included, gets a fresh nonce and `created`. The signing is `toyseal_ffi.sign_request`, the
   SDK's own signer.
3. Steering (`map_case`): positive cases mostly get the real family id and real envelope ids in
   their paths, and octet-stream bodies are often swapped for a valid body, so requests get past
   404/400 into the handlers; about one in five keeps what schemathesis generated. Some cases
   are sent unsigned or with a forged signature (the 401 paths), and some are signed by the
   toy (the 403 paths). Cases generated as negative at the path are left alone. The choice is
   a pure function of the generated case (a hash), so Hypothesis' replay and shrinking stay
   deterministic.
4. A check (`signed_request_accepted`): a request this hook signed by a family device (the
   guardian or the toy) for a signed route must never be a 401 (the signer or the verifier would be wrong), except
   family creation with a body that is no founding roster (the spec answers those with the
   generic 401, §5 step 5).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import atexit
import hashlib
import os
import pathlib
import shutil
import sys
import tempfile
import time
import urllib.parse

import requests
import schemathesis
from schemathesis.core.parameters import ParameterLocation

# --- the SDK's Python bindings -----------------------------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINDINGS = ROOT / "crates/toyseal-ffi/bindings/python/toyseal_ffi.py"


def _load_bindings():
    """UniFFI's loader wants the library beside the module: copy both to a temp dir."""
    lib = pathlib.Path(os.environ["TOYSEAL_FFI_LIB"])
    d = pathlib.Path(tempfile.mkdtemp(prefix="toyseal-schemathesis-"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    shutil.copy(BINDINGS, d / "toyseal_ffi.py")
    shutil.copy(lib, d / lib.name)
    sys.path.insert(0, str(d))
    import toyseal_ffi  # noqa: PLC0415

    return toyseal_ffi


ts = _load_bindings()
SERVER = os.environ["TOYSEAL_FUZZ_SERVER"].rstrip("/")
# A signature is valid for at most 300 s (spec §3); a minute is plenty for one request.
VALIDITY_SECS = 60


class MemoryKeyStore(ts.KeyStore):
    """Synthetic identities, kept in memory only."""

    def __init__(self):
        self.items = {}

    def load_secret_key_text(self, name):
        return self.items.get(name)

    def store_secret_key_text(self, name, secret_key_text):
        self.items[name] = secret_key_text

    def delete(self, name):
        return self.items.pop(name, None) is not None


# --- the family --------------------------------------------------------------------------------

_store = MemoryKeyStore()
GUARDIAN = ts.Identity.load_or_generate(_store, "guardian", ts.Role.GUARDIAN)
TOY = ts.Identity.load_or_generate(_store, "toy", ts.Role.TOY)


# Every family enrols a recovery key at founding (roster.md §1.2); the fuzzer's families share
# this one.
RECOVERY = ts.RecoveryKey.generate()


def _founding(family_id: str):
    """Version 1 of a family: the guardian signs, the recovery key and the toy co-sign
    (roster.md §3)."""
    members = [GUARDIAN.public_key(), TOY.public_key()]
    return (
        ts.RosterProposal.founding(family_id, members, RECOVERY)
        .sign(GUARDIAN)
        .cosign_recovery(RECOVERY)
        .cosign(TOY)
    )


def _chain(sender, roster, texts, first, previous=b""):
    """Envelopes on `sender`'s chain (envelope.md §11.2): sequences first, first + 1, …, each
    naming the previous one's header hash, so the server's sender-chain rules (signed-requests.md
    §Sender chains) hold whatever order the fuzzer uploads them in."""
    out = []
    for i, text in enumerate(texts):
        envelope = roster.seal(sender, text, ts.EnvelopeMetadata(), first + i, previous)
        previous = ts.envelope_header_hash(envelope)
        out.append(envelope)
    return out


async def _found_family():
    v1 = _founding(ts.generate_family_id())
    cloud = ts.CloudClient(SERVER, GUARDIAN)
    roster = await cloud.create_family(v1)
    ids = []
    setup = _chain(GUARDIAN, roster, [b"fuzz setup %d" % seq for seq in (1, 2)], 1)
    for envelope in setup:
        ids.append(await cloud.upload(roster.family_id(), envelope))
    return v1, roster, ids, ts.envelope_header_hash(setup[-1])


V1, ROSTER, ENVELOPE_IDS, SETUP_HEAD = asyncio.run(_found_family())
FAMILY = ROSTER.family_id()
# Valid bodies the fuzzer may send: envelopes the guardian sealed for this family (201 the first
# time, 200 again, 201 after a delete), founding rosters of fresh families (201 at their own
# path, 400 at another), this family's version 1 (409 at creation and as a roster update) and
# version 2 (below).
ENVELOPES = _chain(GUARDIAN, ROSTER, [b"fuzz %d" % seq for seq in range(8)], 100, SETUP_HEAD)
TOY_ENVELOPES = _chain(TOY, ROSTER, [b"toy %d" % seq for seq in range(4)], 1)


async def _toy_uploads():
    """The toy's envelopes, stored: the guardian's DELETE of one is a soft deletion (202, then
    restorable; signed-requests.md §6.1), the toy's own DELETE erases it (204)."""
    cloud = ts.CloudClient(SERVER, TOY)
    return [await cloud.upload(FAMILY, e) for e in TOY_ENVELOPES]


TOY_ENVELOPE_IDS = asyncio.run(_toy_uploads())
FRESH_FAMILIES = [_founding(ts.generate_family_id()) for _ in range(6)]
FOUNDING_BODIES = [V1.encode()] + [v.encode() for v in FRESH_FAMILIES]
# Version 2 of this family, same members, signed by its quorum (guardian + toy): 200 once, 409
# after that (not the next version any more).
V2 = ts.RosterProposal.next(ROSTER, ROSTER.members()).sign(GUARDIAN).cosign(TOY)
ENVELOPE_IDS += [hashlib.sha256(e).hexdigest() for e in ENVELOPES]
ENVELOPE_IDS += TOY_ENVELOPE_IDS
print(
    f"toyseal hooks: family {FAMILY} founded on {SERVER} by guardian {GUARDIAN.device_id()} "
    f"(toy {TOY.device_id()}); {len(ENVELOPE_IDS)} envelope ids known",
    file=sys.stderr,
)

# --- signing -----------------------------------------------------------------------------------

# How a case is to be sent, chosen in `map_case`, carried to the signer in a header that the
# signer removes before signing (it never reaches the server): "guardian" (the default), "toy",
# "unsigned", or "forged" (the guardian's signature with one bit flipped: it parses, is fresh,
# names a registered key and a fresh nonce, and fails only the Ed25519 check, spec §5 step 7).
MODE_HEADER = "X-Toyseal-Fuzz-Signer"
SIGNATURE_HEADERS = ("Content-Digest", "Signature-Input", "Signature")
# Signatures made here by a device of the family (for the check at the end of this module).
SIGNED_BY_REGISTERED: set[str] = set()


def _flip_a_bit(signature_header: str) -> str:
    """`toyseal=:<base64>:` with the first bit of the signature flipped."""
    raw = bytearray(base64.b64decode(signature_header.removeprefix("toyseal=:").removesuffix(":")))
    raw[0] ^= 0x01
    return "toyseal=:" + base64.b64encode(bytes(raw)).decode() + ":"


class ToysealSignature(requests.auth.AuthBase):
    """Signs the prepared request (spec §1-§4) with a family device's key.

    Runs after requests encoded the URL and serialized the body, so what is signed is what is
    sent: `@method` the method, `@authority` the URL's host[:port] (requests sends it as
    `Host`), `@path` and `@query` the encoded target, `content-digest` over the body bytes.
    Every call signs anew (a fresh nonce and `created`), so a resent request is no replay.
    """

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        mode = r.headers.pop(MODE_HEADER, "guardian")
        # The fuzzer may have generated a `Signature` header (the declared security
        # parameter); ours replace it.
        for name in SIGNATURE_HEADERS:
            r.headers.pop(name, None)
        if mode == "unsigned":
            return r
        body = r.body if r.body is not None else b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"cannot sign a streamed body ({type(body).__name__})")
        url = urllib.parse.urlsplit(r.url)
        target = ts.RequestTarget(
            method=r.method,
            authority=url.netloc,
            path=url.path or "/",
            query=url.query if "?" in r.url else None,
        )
        signer = TOY if mode == "toy" else GUARDIAN
        h = ts.sign_request(signer, target, bytes(body), int(time.time()), VALIDITY_SECS)
        r.headers["Content-Digest"] = h.content_digest
        r.headers["Signature-Input"] = h.signature_input
        if mode == "forged":
            r.headers["Signature"] = _flip_a_bit(h.signature)
        else:
            r.headers["Signature"] = h.signature
            SIGNED_BY_REGISTERED.add(h.signature)
        return r


schemathesis.auth.set_from_requests(ToysealSignature())

# --- steering generated cases ------------------------------------------------------------------


def _pick(seed: bytes, n: int) -> int:
    """A number in 0..n from the case's own bytes (deterministic, so Hypothesis can replay)."""
    return int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") % n


def _case_seed(case) -> bytes:
    body = case.body if isinstance(case.body, (bytes, str)) else repr(case.body)
    return repr(
        (case.operation.label, sorted((case.path_parameters or {}).items()), case.query, body)
    ).encode()


@schemathesis.hook
def map_case(context, case):
    seed = _case_seed(case)
    label = case.operation.label
    path_negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    params = case.path_parameters
    if params is not None and not path_negative and _pick(seed + b"path", 5) != 0:
        if "family" in params:
            params["family"] = FAMILY
        if "id" in params:
            params["id"] = ENVELOPE_IDS[_pick(seed + b"id", len(ENVELOPE_IDS))]
    body_negative = case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY)
    if case.media_type == "application/octet-stream" and not body_negative:
        k = _pick(seed + b"body", 4)
        if label == "POST /v1/families/{family}/envelopes" and k != 0:
            case.body = ENVELOPES[_pick(seed + b"env", len(ENVELOPES))]
        elif label == "POST /v1/families/{family}" and k != 0:
            body = FOUNDING_BODIES[_pick(seed + b"roster", len(FOUNDING_BODIES))]
            case.body = body
            # Half the time at its own family's path: a 201 for a fresh one, 409 for ours.
            if params is not None and not path_negative and k % 2 == 1:
                params["family"] = ts.SignedRoster.decode(body).family_id()
        elif label == "POST /v1/families/{family}/roster" and k in (1, 2):
            case.body = (V1 if k == 1 else V2).encode()
    # The signer: mostly the guardian; sometimes nobody, a forged signature, or the toy.
    mode = ["guardian"] * 14 + ["unsigned", "forged", "toy", "toy"]
    chosen = mode[_pick(seed + b"signer", len(mode))]
    if label == "POST /v1/families/{family}/envelopes" and chosen == "toy":
        # A toy uploads what it sealed itself (201), or the guardian's envelope (403).
        if _pick(seed + b"toyenv", 2) == 0:
            case.body = TOY_ENVELOPES[_pick(seed + b"env", len(TOY_ENVELOPES))]
    if chosen != "guardian":
        if case.headers is None:
            case.headers = {}
        case.headers[MODE_HEADER] = chosen
    return case


# --- a check the schema cannot express ----------------------------------------------------------


@schemathesis.check
def signed_request_accepted(ctx, response, case):
    """A request signed here by a registered device must not be refused as unauthenticated."""
    sent = response.request.headers
    if response.status_code != 401 or sent.get("Signature") not in SIGNED_BY_REGISTERED:
        return None
    label = case.operation.label
    if label == "POST /v1/families/{family}":
        body = response.request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if body not in FOUNDING_BODIES:
            return None  # no founding roster in the body: the generic 401 (spec §5 step 5)
    if not case.operation.path.startswith("/v1/families/"):
        return None  # health and the OpenAPI document take no signature
    raise AssertionError(
        f"a request signed by a registered device was refused with 401: {case.operation.label}"
    )


# --- a summary of what reached the server ------------------------------------------------------

# operation -> (status, how it was signed, whether the path named the hook's family) -> count
_STATUSES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@schemathesis.hook
def after_call(context, case, response):
    headers = response.request.headers
    if headers.get("Signature") not in SIGNED_BY_REGISTERED:
        signer = "unsigned/forged"
    elif f'keyid="{TOY.device_id()}"' in headers.get("Signature-Input", ""):
        signer = "toy"
    else:
        signer = "guardian"
    ours = FAMILY in response.request.url
    _STATUSES[case.operation.label][(response.status_code, signer, ours)] += 1


def _summary():
    total = sum(sum(c.values()) for c in _STATUSES.values())
    print(f"\ntoyseal hooks: {total} requests (status signer [our family]: count)", file=sys.stderr)
    for label in sorted(_STATUSES):
        counts = sorted(_STATUSES[label].items())
        parts = [f"{s} {who}{' ours' if o else ''}: {n}" for (s, who, o), n in counts]
        print(f"  {label}: " + ", ".join(parts), file=sys.stderr)


atexit.register(_summary)
