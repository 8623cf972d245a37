"""The phone's job through the Python bindings, against a Rust toy in the same process
(SimulatedToy: the real toyseal_pairing::Toy): pairing with the SAS, a recording from the toy,
a reply the toy opens, roster signing, request signing, and the error cases."""

import asyncio
import os

import pytest

import toyseal_ffi as ts

NOW = 1_000


class MemoryKeyStore(ts.KeyStore):
    """A KeyStore as an app writes it (here a dict; on a phone, the keychain)."""

    def __init__(self):
        self.items = {}

    def load_secret_key_text(self, name):
        return self.items.get(name)

    def store_secret_key_text(self, name, secret_key_text):
        self.items[name] = secret_key_text

    def delete(self, name):
        return self.items.pop(name, None) is not None


class FailingKeyStore(ts.KeyStore):
    def load_secret_key_text(self, name):
        raise ts.ToysealError.KeyStore("keychain locked")

    def store_secret_key_text(self, name, secret_key_text):
        raise ts.ToysealError.KeyStore("keychain locked")

    def delete(self, name):
        return False


def pump(phone, toy, now=NOW, toy_frames=()):
    """Moves frames both ways until both sides are quiet; returns the phone's events."""
    for f in toy_frames:
        phone.handle_frame(f, now)
    events = []
    while True:
        moved = False
        while (frame := phone.poll_transmit()) is not None:
            moved = True
            for reply in toy.handle_frame(frame, now):
                phone.handle_frame(reply, now)
        while (e := phone.poll_event()) is not None:
            events.append(e)
        if not moved:
            return events


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def paired():
    store = MemoryKeyStore()
    me = ts.Identity.load_or_generate(store, "phone", ts.Role.GUARDIAN)
    phone = ts.Phone(me)
    toy = ts.SimulatedToy()
    toy.press_pair_button(NOW)
    phone.pair(toy.printed_code())
    events = pump(phone, toy)
    return me, phone, toy, events


def family():
    """Pairs, opens a session, founds the family (v1 signed by the phone, co-signed by the toy)."""
    me, phone, toy, events = paired()
    toy_key = of(events, ts.PhoneEvent.PAIRED)[0].toy
    toy.disconnect()
    phone.handle_disconnect()
    phone.open_session(toy_key)
    events = pump(phone, toy)
    assert of(events, ts.PhoneEvent.SESSION_OPENED)
    v1 = (
        ts.RosterProposal.founding(ts.generate_family_id(), [me.public_key(), toy_key], RECOVERY)
        .sign(me)
        .cosign_recovery(RECOVERY)
    )
    phone.push_rosters([v1], NOW)
    events = pump(phone, toy)
    rosters = of(events, ts.PhoneEvent.ROSTERS)[0].rosters
    [v1_cosigned] = rosters
    roster = ts.Roster.verify_founding(v1_cosigned)
    return me, phone, toy, roster


# Every family keeps a printed recovery key (roster.md §1.2); the tests' families share one.
RECOVERY = ts.RecoveryKey.generate()


def test_recovery_key_prints_and_scans_back():
    printed = RECOVERY.export_printable()
    assert printed.startswith("TOYSEAL-RECOVERY-1")
    assert ts.RecoveryKey.from_printable(printed.lower()).signer_id() == RECOVERY.signer_id()
    with pytest.raises(ts.ToysealError):
        ts.RecoveryKey.from_printable(printed[:-1] + ("Q" if printed[-1] != "Q" else "P"))
    member = ts.Identity.load_or_generate(MemoryKeyStore(), "gran", ts.Role.MEMBER)
    assert member.public_key().role() == ts.Role.MEMBER


def test_identity_is_stored_once_and_reloaded():
    store = MemoryKeyStore()
    a = ts.Identity.load_or_generate(store, "phone", ts.Role.GUARDIAN)
    b = ts.Identity.load_or_generate(store, "phone", ts.Role.GUARDIAN)
    assert a.device_id() == b.device_id()
    assert list(store.items) == ["phone"]
    assert store.items["phone"].startswith("TOYSEAL-SECRET-KEY-1")
    assert a.public_key() == b.public_key()
    assert ts.PublicKey.parse(str(a.public_key())) == a.public_key()
    with pytest.raises(ts.ToysealError.InvalidArgument):
        ts.Identity.load_or_generate(store, "phone", ts.Role.TOY)


def test_key_store_failure_surfaces():
    with pytest.raises(ts.ToysealError.KeyStore):
        ts.Identity.load_or_generate(FailingKeyStore(), "phone", ts.Role.GUARDIAN)


def test_pairing_shows_the_same_sas_on_both_sides():
    _, _, toy, events = paired()
    sas = of(events, ts.PhoneEvent.SAS)
    assert len(sas) == 1 and len(sas[0].sas) == 6
    assert sas[0].sas == toy.sas()
    done = of(events, ts.PhoneEvent.PAIRED)
    assert done and done[0].toy == toy.public_key()


def test_pairing_with_the_scanned_qr():
    me = ts.Identity.load_or_generate(MemoryKeyStore(), "p", ts.Role.GUARDIAN)
    phone = ts.Phone(me)
    toy = ts.SimulatedToy()
    toy.press_pair_button(NOW)
    phone.pair_scanned(toy.qr_text())
    assert of(pump(phone, toy), ts.PhoneEvent.PAIRED)


def test_wrong_code_fails_pairing():
    me = ts.Identity.load_or_generate(MemoryKeyStore(), "p", ts.Role.GUARDIAN)
    phone = ts.Phone(me)
    toy = ts.SimulatedToy()
    toy.press_pair_button(NOW)
    right = toy.printed_code()
    wrong = ("13572468" if right != "13572468" else "24681357")
    phone.pair(wrong)
    events = pump(phone, toy)
    assert not of(events, ts.PhoneEvent.PAIRED)
    failed = of(events, ts.PhoneEvent.PAIRING_FAILED)
    assert failed and failed[0].reason == ts.FailureReason.AUTHENTICATION


def test_malformed_code_is_an_invalid_argument():
    me = ts.Identity.load_or_generate(MemoryKeyStore(), "p", ts.Role.GUARDIAN)
    with pytest.raises(ts.ToysealError.InvalidArgument):
        ts.Phone(me).pair("12")


def test_a_toy_identity_cannot_be_a_phone():
    toy_id = ts.Identity.load_or_generate(MemoryKeyStore(), "t", ts.Role.TOY)
    with pytest.raises(ts.ToysealError.InvalidArgument):
        ts.Phone(toy_id)


def test_recording_from_the_toy_opens_and_a_reply_reaches_the_toy():
    me, phone, toy, roster = family()
    recording = bytes(range(256)) * 200
    frames = toy.record_and_send(recording, ts.EnvelopeMetadata(content_type="audio/L8"), NOW)
    events = pump(phone, toy, toy_frames=frames)
    received = of(events, ts.PhoneEvent.ENVELOPE_RECEIVED)
    assert len(received) == 1
    opened = roster.open(me, received[0].envelope)
    assert opened.content == recording
    assert opened.info.sender == toy.public_key()
    assert opened.info.metadata.content_type == "audio/L8"

    # Streaming: content comes out only as checkpoints prove it; finish proves the end.
    opener = roster.opener(me)
    out = b""
    envelope = received[0].envelope
    for i in range(0, len(envelope), 1000):
        out += opener.push(envelope[i : i + 1000])
    info = opener.finish()
    assert out == recording and info.content_len == len(recording)
    with pytest.raises(ts.ToysealError.WrongState):
        opener.push(b"more")

    reply = roster.seal(me, b"Goodnight, sleep tight!", ts.EnvelopeMetadata(), 1, b"")
    transfer = phone.send_envelope(reply, NOW)
    events = pump(phone, toy)
    assert [e.transfer for e in of(events, ts.PhoneEvent.ENVELOPE_DELIVERED)] == [transfer]
    assert toy.open_received() == [b"Goodnight, sleep tight!"]


def test_tampered_envelope_is_refused():
    me, phone, toy, roster = family()
    frames = toy.record_and_send(b"x" * 5000, ts.EnvelopeMetadata(), NOW)
    envelope = of(pump(phone, toy, toy_frames=frames), ts.PhoneEvent.ENVELOPE_RECEIVED)[0].envelope
    bad = bytearray(envelope)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(ts.ToysealError.Authentication):
        roster.open(me, bytes(bad))
    opener = roster.opener(me)
    with pytest.raises(ts.ToysealError):
        opener.push(bytes(bad))
        opener.finish()
    truncated = roster.opener(me)
    truncated.push(envelope[: len(envelope) - 10])
    with pytest.raises(ts.ToysealError.Truncated):
        truncated.finish()


def test_envelope_from_outside_the_family_is_refused():
    me, phone, toy, roster = family()
    stranger = ts.Identity.load_or_generate(MemoryKeyStore(), "s", ts.Role.GUARDIAN)
    other_v1 = (
        ts.RosterProposal.founding(
            roster.family_id(), [stranger.public_key(), me.public_key()], RECOVERY
        )
        .sign(stranger)
        .cosign_recovery(RECOVERY)
    )
    # Not co-signed by a toy: version 1 of a family needs the founding guardian and a toy.
    with pytest.raises(ts.ToysealError.RosterRejected):
        ts.Roster.verify_founding(other_v1)


def test_roster_update_is_proposed_cosigned_and_verified():
    me, phone, toy, roster = family()
    second = ts.Identity.load_or_generate(MemoryKeyStore(), "dad", ts.Role.GUARDIAN)
    members = roster.members() + [second.public_key()]
    v2 = ts.RosterProposal.next(roster, members).sign(me)
    assert v2.version() == 2
    # One guardian alone is not a quorum, and the new member has not proved possession.
    assert not roster.has_quorum(v2)
    with pytest.raises(ts.ToysealError.RosterRejected):
        roster.verify_next(v2)
    v2 = v2.cosign(second)
    # Adding a phone is a grant: a guardian and the toy are no quorum for it.
    assert roster.change_class(v2) == ts.ChangeClass.GRANT
    assert not roster.has_quorum(v2.cosign(me))
    # Mum scans the printed recovery key: a guardian and the recovery key are.
    v2_full = v2.cosign_recovery(RECOVERY)
    assert roster.has_quorum(v2_full)
    newer = roster.verify_next(v2_full)
    assert newer.version() == 2 and len(newer.members()) == 3
    assert ts.SignedRoster.decode(v2_full.encode()).signers() == v2_full.signers()


def test_anchored_join_refuses_a_fabricated_chain():
    me, phone, toy, roster = family()
    invitation = ts.Invitation(roster.signed(), "https://cloud.example")
    parsed = ts.Invitation.parse(str(invitation))
    assert parsed.server() == "https://cloud.example"
    assert str(parsed.anchor()) == str(roster.anchor())
    # The real chain passes through the anchor.
    assert ts.Roster.verify_anchored_chain([roster.signed()], parsed.anchor()).version() == 1
    # A server fabricates a family with the same id (its own guardian and toy).
    fake_guardian = ts.Identity.load_or_generate(MemoryKeyStore(), "g", ts.Role.GUARDIAN)
    fake_toy = ts.Identity.load_or_generate(MemoryKeyStore(), "t", ts.Role.TOY)
    fake_recovery = ts.RecoveryKey.generate()
    fake = (
        ts.RosterProposal.founding(
            roster.family_id(),
            [fake_guardian.public_key(), fake_toy.public_key(), me.public_key()],
            fake_recovery,
        )
        .sign(fake_guardian)
        .cosign(fake_toy)
        .cosign(me)
        .cosign_recovery(fake_recovery)
    )
    ts.Roster.verify_founding(fake)  # valid on its own...
    # ...a version 1 with the same number and another hash: a fork of this device's roster...
    with pytest.raises(ts.ToysealError.RosterFork):
        roster.check_same(fake)
    with pytest.raises(ts.ToysealError.RosterRejected):
        ts.Roster.verify_anchored_chain([fake], parsed.anchor())  # ...but not through the anchor
    with pytest.raises(ts.ToysealError.InvalidArgument):
        ts.Invitation.parse("toyseal-invite:1:nonsense")


def test_request_signing():
    me = ts.Identity.load_or_generate(MemoryKeyStore(), "p", ts.Role.GUARDIAN)
    target = ts.RequestTarget(method="POST", authority="127.0.0.1:8080", path="/v1/x", query=None)
    h = ts.sign_request(me, target, b"{}", 1_700_000_000, 60)
    assert h.content_digest.startswith("sha-256=:")
    assert h.signature_input.startswith("toyseal=(")
    assert me.device_id() in h.signature_input
    assert h.signature.startswith("toyseal=:")
    with pytest.raises(ts.ToysealError.InvalidArgument):
        ts.sign_request(me, target, b"{}", 1_700_000_000, 3600)


def test_frames_cross_the_ble_link_in_att_sized_packets():
    me, phone, toy, roster = family()
    fragmenter = ts.Fragmenter(23)
    reassembler = ts.Reassembler()
    frames = toy.record_and_send(b"v" * 3000, ts.EnvelopeMetadata(), NOW)
    for frame in frames:
        packets = fragmenter.fragment(frame)
        assert all(1 <= len(p) <= 20 for p in packets)
        whole = [reassembler.push(p, NOW) for p in packets]
        assert whole[:-1] == [None] * (len(packets) - 1) and whole[-1] == frame
    # A packet out of sequence is a broken (or tampered) link.
    packets = ts.Fragmenter(23).fragment(b"x" * 100)
    with pytest.raises(ts.ToysealError.LinkBroken):
        fresh = ts.Reassembler()
        fresh.push(packets[0], NOW)
        fresh.push(packets[2], NOW)
    with pytest.raises(ts.ToysealError.InvalidArgument):
        ts.Fragmenter(7)


SERVER = os.environ.get("TOYSEAL_TEST_SERVER")


@pytest.mark.skipif(not SERVER, reason="TOYSEAL_TEST_SERVER (a running `toyseal serve`) not set")
def test_cloud_client_against_a_real_server():
    async def flow():
        me, phone, toy, roster = family()
        cloud = ts.CloudClient(SERVER, me)
        created = await cloud.create_family(roster.signed())
        assert created.version() == 1
        # A second device joining through the anchor gets the verified chain.
        fetched = await cloud.roster(roster.anchor())
        assert fetched.family_id() == roster.family_id()

        # The server stores only envelopes its uploader sealed (sender = signer of the request).
        envelope = roster.seal(me, b"hello from the phone" * 100, ts.EnvelopeMetadata(), 7, b"")
        envelope_id = await cloud.upload(roster.family_id(), envelope)
        page = await cloud.list(roster.family_id(), None, None)
        assert [s.id for s in page.items] == [envelope_id]
        assert page.items[0].sender == me.device_id()
        downloaded = await cloud.download(roster.family_id(), envelope_id)
        assert downloaded == envelope
        # ...and the toy opens what came back from the cloud.
        phone.send_envelope(downloaded, NOW)
        pump(phone, toy)
        assert toy.open_received() == [b"hello from the phone" * 100]
        # Its own envelope: erased at once (no pending deletion to restore).
        assert await cloud.delete_envelope(roster.family_id(), envelope_id) is None
        assert (await cloud.list(roster.family_id(), None, None)).items == []
        assert (await cloud.deletions(roster.family_id(), None, None)).items == []

        # A device outside the family is refused by the server.
        stranger = ts.Identity.load_or_generate(MemoryKeyStore(), "s", ts.Role.GUARDIAN)
        with pytest.raises(ts.ToysealError.Server) as refused:
            await ts.CloudClient(SERVER, stranger).list(roster.family_id(), None, None)
        assert refused.value.status in (401, 403, 404)
        # The server's problem details come through; a stranger learns nothing more.
        assert refused.value.kind in ("unauthenticated", "forbidden", "not-found")
        assert refused.value.removed_at_version is None

    asyncio.run(flow())



@pytest.mark.skipif(not SERVER, reason="TOYSEAL_TEST_SERVER (a running `toyseal serve`) not set")
def test_erasure_and_family_deletion_signed_with_the_recovery_key():
    async def flow():
        me, _, _, roster = family()
        cloud = ts.CloudClient(SERVER, me)
        await cloud.create_family(roster.signed())
        envelope = roster.seal(me, b"to erase", ts.EnvelopeMetadata(), 1, b"")
        envelope_id = await cloud.upload(roster.family_id(), envelope)
        # One guardian alone cannot erase at once; with the recovery key it can.
        alone = ts.EnvelopeErasure(roster, [envelope_id]).cosign(me)
        with pytest.raises(ts.ToysealError):
            alone.verify(roster)
        with pytest.raises(ts.ToysealError.Server):
            await cloud.erase(alone)
        erasure = ts.EnvelopeErasure.decode(alone.cosign_recovery(RECOVERY).encode())
        erasure.verify(roster)
        await cloud.erase(erasure)
        assert (await cloud.list(roster.family_id(), None, None)).items == []
        assert (await cloud.deletions(roster.family_id(), None, None)).items == []

        deletion = ts.FamilyDeletion(roster).cosign(me)
        with pytest.raises(ts.ToysealError.Server):
            await cloud.delete_family(deletion)
        deletion = deletion.cosign_recovery(RECOVERY)
        deletion.verify(roster)
        await cloud.delete_family(deletion)
        with pytest.raises(ts.ToysealError.Server):
            await cloud.list(roster.family_id(), None, None)

    asyncio.run(flow())


def test_a_second_phone_pairs_with_a_guardians_one_time_code():
    me, phone, toy, roster = family()
    code = phone.open_pairing_window(NOW)
    acks = of(pump(phone, toy), ts.PhoneEvent.PAIRING_WINDOW_ACK)
    assert len(code) == 10 and [a.opened for a in acks] == [True]
    phone.close_session(NOW)
    pump(phone, toy)
    toy.disconnect()
    dad = ts.Phone(ts.Identity.load_or_generate(MemoryKeyStore(), "dad", ts.Role.GUARDIAN))
    # The printed code no longer admits anyone: the toy has a guardian.
    dad.pair(toy.printed_code())
    assert of(pump(dad, toy), ts.PhoneEvent.PAIRING_FAILED)
    toy.disconnect()
    dad.handle_disconnect()
    dad.reset_pairing_attempts()
    dad.pair(code)
    events = pump(dad, toy)
    assert of(events, ts.PhoneEvent.SAS)[0].sas == toy.sas()
    assert of(events, ts.PhoneEvent.PAIRED)


def recovering_phone(toy):
    """A new phone pairs with the printed code in the toy's recovery window and opens a session."""
    new = ts.Identity.load_or_generate(MemoryKeyStore(), "new", ts.Role.GUARDIAN)
    phone = ts.Phone(new)
    toy.open_recovery_window(NOW)
    phone.pair(toy.printed_code())
    assert of(pump(phone, toy), ts.PhoneEvent.PAIRED)
    toy.disconnect()
    phone.handle_disconnect()
    phone.open_session(toy.public_key())
    assert of(pump(phone, toy), ts.PhoneEvent.SESSION_OPENED)
    return new, phone


def test_recovery_replaces_a_lost_phone_with_the_printed_key():
    mum, old_phone, toy, v1 = family()
    toy.disconnect()
    old_phone.handle_disconnect()
    new, phone = recovering_phone(toy)
    scanned = ts.RecoveryKey.from_printable(RECOVERY.export_printable())
    phone.prove_recovery(scanned, NOW)
    events = pump(phone, toy)
    answers = [e.answer for e in of(events, ts.PhoneEvent.RECOVERY_ANSWERED)]
    assert answers == [ts.RecoveryAnswer.PROVED]
    [head] = of(events, ts.PhoneEvent.ROSTERS)[0].rosters
    assert head.encode() == v1.signed().encode()
    held = ts.Roster.verify_founding(head)
    v2 = (
        ts.RosterProposal.next(held, [new.public_key(), toy.public_key()])
        .sign_with_recovery(scanned)
        .cosign(new)
    )
    phone.push_rosters([v2], NOW)
    events = pump(phone, toy)
    answered = of(events, ts.PhoneEvent.TOY_ANSWERED)
    assert [(a.version, a.answer) for a in answered] == [(2, ts.ToyAnswer.CONFIRMED)]
    [back] = of(events, ts.PhoneEvent.ROSTERS)[0].rosters
    v2 = v1.verify_next(back)
    ids = [m.device_id() for m in v2.members()]
    assert new.device_id() in ids and mum.device_id() not in ids


def test_recovery_with_another_key_is_refused():
    _, old_phone, toy, _ = family()
    toy.disconnect()
    old_phone.handle_disconnect()
    _, phone = recovering_phone(toy)
    phone.prove_recovery(ts.RecoveryKey.generate(), NOW)
    events = pump(phone, toy)
    answers = [e.answer for e in of(events, ts.PhoneEvent.RECOVERY_ANSWERED)]
    assert answers == [ts.RecoveryAnswer.REFUSED]
    assert not of(events, ts.PhoneEvent.ROSTERS)
    assert toy.roster().version() == 1


def test_recovery_proof_needs_a_session():
    me = ts.Identity.load_or_generate(MemoryKeyStore(), "p", ts.Role.GUARDIAN)
    with pytest.raises(ts.ToysealError):
        ts.Phone(me).prove_recovery(RECOVERY, NOW)


def _chain(roster, sender, n):
    out = []
    for sequence in range(1, n + 1):
        previous = ts.envelope_header_hash(out[-1]) if out else b""
        out.append(
            roster.seal(sender, f"message {sequence}".encode(), ts.EnvelopeMetadata(), sequence, previous)
        )
    return out


def test_receive_state_opens_a_removed_devices_earlier_envelopes_and_survives_a_restart():
    mum, dad, toy = (
        ts.Identity.load_or_generate(MemoryKeyStore(), "k", role)
        for role in (ts.Role.GUARDIAN, ts.Role.GUARDIAN, ts.Role.TOY)
    )
    v1 = ts.Roster.verify_founding(
        ts.RosterProposal.founding(
            ts.generate_family_id(), [mum.public_key(), dad.public_key(), toy.public_key()], RECOVERY
        )
        .sign(mum)
        .cosign(dad)
        .cosign(toy)
        .cosign_recovery(RECOVERY)
    )
    dads = _chain(v1, dad, 3)
    head = ts.envelope_header_hash(dads[1])
    v2 = v1.verify_next(
        ts.RosterProposal.next(v1, [mum.public_key(), toy.public_key()])
        .with_last_envelope(dad.public_key(), 2, head)
        .sign(mum)
        .cosign_recovery(RECOVERY)
    )
    # Without the state only the recorded head opens.
    with pytest.raises(ts.ToysealError):
        v2.open(mum, dads[0])
    state = ts.ReceiveState()
    assert state.gap(dad.public_key(), head) == head
    assert v2.open_with_state(mum, dads[1], state).freshness == ts.Freshness.NEW
    opened = v2.open_with_state(mum, dads[0], state)
    assert opened.content == b"message 1"
    assert opened.freshness == ts.Freshness.LATE
    assert state.gap(dad.public_key(), head) is None
    assert v2.open_with_state(mum, dads[0], state).freshness == ts.Freshness.REPLAY
    with pytest.raises(ts.ToysealError):
        v2.open_with_state(mum, dads[2], state)  # after the recorded head

    saved = state.encode()
    restored = ts.ReceiveState.decode(saved)
    assert restored.link_count() == 2
    assert restored.highest_sequence(dad.public_key()) == 2
    assert v2.open_with_state(mum, dads[1], restored).freshness == ts.Freshness.REPLAY
    with pytest.raises(ts.ToysealError):
        ts.ReceiveState.decode(saved[:-1])

    # A member's fork (another envelope at dad's sequence 1 under v1) is refused and reported.
    fork = _chain(v1, dad, 1)[0]
    members = ts.ReceiveState()
    assert v1.open_with_state(mum, dads[0], members).freshness == ts.Freshness.NEW
    with pytest.raises(ts.ToysealError):
        v1.open_with_state(mum, fork, members)
    assert v1.record_envelope(fork, members) == ts.Freshness.FORK
