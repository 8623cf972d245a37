// The phone's job through the Kotlin bindings, on the JVM, against a Rust toy in the same
// process (SimulatedToy: the real toyseal_pairing::Toy). Prints "N passed, N failed" and exits
// non-zero on any failure. Run by `.ci/run` (stage kotlin).

import kotlinx.coroutines.runBlocking
import toyseal.*

const val NOW: ULong = 1_000UL

/** A KeyStore as an app writes it (here a map; on Android, Keystore-wrapped storage). */
class MemoryKeyStore : KeyStore {
    val items = mutableMapOf<String, String>()
    override fun loadSecretKeyText(name: String): String? = items[name]
    override fun storeSecretKeyText(name: String, secretKeyText: String) {
        items[name] = secretKeyText
    }
    override fun delete(name: String): Boolean = items.remove(name) != null
}

class LockedKeyStore : KeyStore {
    override fun loadSecretKeyText(name: String): String? =
        throw ToysealException.KeyStore("keychain locked")
    override fun storeSecretKeyText(name: String, secretKeyText: String) =
        throw ToysealException.KeyStore("keychain locked")
    override fun delete(name: String): Boolean = false
}

/** Moves frames both ways until both sides are quiet; returns the phone's events. */
fun pump(phone: Phone, toy: SimulatedToy, toyFrames: List<ByteArray> = emptyList()): List<PhoneEvent> {
    toyFrames.forEach { phone.handleFrame(it, NOW) }
    val events = mutableListOf<PhoneEvent>()
    while (true) {
        var moved = false
        while (true) {
            val frame = phone.pollTransmit() ?: break
            moved = true
            toy.handleFrame(frame, NOW).forEach { phone.handleFrame(it, NOW) }
        }
        while (true) events.add(phone.pollEvent() ?: break)
        if (!moved) return events
    }
}

fun guardian(name: String = "phone") = Identity.loadOrGenerate(MemoryKeyStore(), name, Role.GUARDIAN)

class Paired(val me: Identity, val phone: Phone, val toy: SimulatedToy, val events: List<PhoneEvent>)

fun paired(): Paired {
    val me = guardian()
    val phone = Phone(me)
    val toy = SimulatedToy()
    toy.pressPairButton(NOW)
    phone.pair(toy.printedCode())
    return Paired(me, phone, toy, pump(phone, toy))
}

class Family(val me: Identity, val phone: Phone, val toy: SimulatedToy, val roster: Roster, val recovery: RecoveryKey)

fun family(): Family {
    val p = paired()
    val toyKey = p.events.filterIsInstance<PhoneEvent.Paired>().single().toy
    p.toy.disconnect()
    p.phone.handleDisconnect()
    p.phone.openSession(toyKey)
    check(pump(p.phone, p.toy).any { it is PhoneEvent.SessionOpened }) { "no session" }
    // Every family keeps a printed recovery key: it signs version 1 with the phone.
    val recovery = RecoveryKey.generate()
    val v1 = RosterProposal.founding(generateFamilyId(), listOf(p.me.publicKey(), toyKey), recovery)
        .sign(p.me).cosignRecovery(recovery)
    p.phone.pushRosters(listOf(v1), NOW)
    val cosigned = pump(p.phone, p.toy).filterIsInstance<PhoneEvent.Rosters>().single().rosters
    return Family(p.me, p.phone, p.toy, Roster.verifyFounding(cosigned.single()), recovery)
}

/** A test that cannot run here (CI always provides what it needs). */
class Skipped(why: String) : Exception(why)

inline fun <reified E : Throwable> assertThrows(block: () -> Unit) {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return
        throw AssertionError("expected ${E::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing thrown")
}

fun assertEq(want: Any?, got: Any?) {
    if (want != got) throw AssertionError("expected $want, got $got")
}

val tests: List<Pair<String, () -> Unit>> = listOf(
    "identity is stored once and reloaded" to {
        val store = MemoryKeyStore()
        val a = Identity.loadOrGenerate(store, "phone", Role.GUARDIAN)
        val b = Identity.loadOrGenerate(store, "phone", Role.GUARDIAN)
        assertEq(a.deviceId(), b.deviceId())
        assertEq(setOf("phone"), store.items.keys)
        check(store.items.getValue("phone").startsWith("TOYSEAL-SECRET-KEY-1"))
        assertEq(a.publicKey(), PublicKey.parse(a.publicKey().toString()))
        assertThrows<ToysealException.InvalidArgument> { Identity.loadOrGenerate(store, "phone", Role.TOY) }
    },
    "a failing KeyStore surfaces as ToysealException.KeyStore" to {
        assertThrows<ToysealException.KeyStore> { Identity.loadOrGenerate(LockedKeyStore(), "p", Role.GUARDIAN) }
    },
    "pairing shows the same SAS on both sides" to {
        val p = paired()
        val sas = p.events.filterIsInstance<PhoneEvent.Sas>().single().sas
        assertEq(6, sas.length)
        assertEq(p.toy.sas(), sas)
        assertEq(p.toy.publicKey(), p.events.filterIsInstance<PhoneEvent.Paired>().single().toy)
    },
    "pairing with the scanned QR" to {
        val phone = Phone(guardian())
        val toy = SimulatedToy()
        toy.pressPairButton(NOW)
        phone.pairScanned(toy.qrText())
        check(pump(phone, toy).any { it is PhoneEvent.Paired })
    },
    "a wrong code fails pairing with Authentication" to {
        val phone = Phone(guardian())
        val toy = SimulatedToy()
        toy.pressPairButton(NOW)
        phone.pair(if (toy.printedCode() != "13572468") "13572468" else "24681357")
        val events = pump(phone, toy)
        check(events.none { it is PhoneEvent.Paired })
        assertEq(FailureReason.AUTHENTICATION, events.filterIsInstance<PhoneEvent.PairingFailed>().single().reason)
    },
    "a malformed code is InvalidArgument" to {
        assertThrows<ToysealException.InvalidArgument> { Phone(guardian()).pair("12") }
    },
    "a recording from the toy opens, whole and streamed; a reply reaches the toy" to {
        val f = family()
        val recording = ByteArray(50_000) { (it % 251).toByte() }
        val frames = f.toy.recordAndSend(recording, EnvelopeMetadata(contentType = "audio/L8"), NOW)
        val envelope = pump(f.phone, f.toy, frames).filterIsInstance<PhoneEvent.EnvelopeReceived>().single().envelope
        val opened = f.roster.open(f.me, envelope)
        check(opened.content.contentEquals(recording))
        assertEq(f.toy.publicKey(), opened.info.sender)
        assertEq("audio/L8", opened.info.metadata.contentType)

        val opener = f.roster.opener(f.me)
        val out = java.io.ByteArrayOutputStream()
        envelope.toList().chunked(1000).forEach { out.write(opener.push(it.toByteArray())) }
        assertEq(recording.size.toULong(), opener.finish().contentLen)
        check(out.toByteArray().contentEquals(recording))
        assertThrows<ToysealException.WrongState> { opener.push(byteArrayOf(1)) }

        val reply = f.roster.seal(f.me, "Goodnight, sleep tight!".toByteArray(), EnvelopeMetadata(), 1UL, ByteArray(0))
        val transfer = f.phone.sendEnvelope(reply, NOW)
        val delivered = pump(f.phone, f.toy).filterIsInstance<PhoneEvent.EnvelopeDelivered>()
        assertEq(listOf(transfer), delivered.map { it.transfer })
        assertEq(listOf("Goodnight, sleep tight!"), f.toy.openReceived().map { String(it) })
    },
    "a tampered or truncated envelope is refused" to {
        val f = family()
        val frames = f.toy.recordAndSend(ByteArray(5000) { 7 }, EnvelopeMetadata(), NOW)
        val envelope = pump(f.phone, f.toy, frames).filterIsInstance<PhoneEvent.EnvelopeReceived>().single().envelope
        val bad = envelope.copyOf()
        bad[bad.size / 2] = (bad[bad.size / 2].toInt() xor 1).toByte()
        assertThrows<ToysealException.Authentication> { f.roster.open(f.me, bad) }
        val truncated = f.roster.opener(f.me)
        truncated.push(envelope.copyOfRange(0, envelope.size - 10))
        assertThrows<ToysealException.Truncated> { truncated.finish() }
    },
    "roster v2 (a grant) is proposed, signed with the printed recovery key, and verified" to {
        val f = family()
        val dad = guardian("dad")
        var v2 = RosterProposal.next(f.roster, f.roster.members() + dad.publicKey()).sign(f.me)
        assertEq(2UL, v2.version())
        check(!f.roster.hasQuorum(v2))
        assertThrows<ToysealException.RosterRejected> { f.roster.verifyNext(v2) }
        v2 = v2.cosign(dad)
        assertEq(ChangeClass.GRANT, f.roster.changeClass(v2))
        // Mum scans the printed key back: a guardian and the recovery key are a quorum.
        val printed = f.recovery.exportPrintable()
        val full = v2.cosignRecovery(RecoveryKey.fromPrintable(printed))
        check(f.roster.hasQuorum(full))
        assertEq(3, f.roster.verifyNext(full).members().size)
    },
    "an anchored join refuses a server-fabricated chain" to {
        val f = family()
        val invitation = Invitation.parse(Invitation(f.roster.signed(), "https://cloud.example").toString())
        assertEq("https://cloud.example", invitation.server())
        assertEq(1UL, Roster.verifyAnchoredChain(listOf(f.roster.signed()), invitation.anchor()).version())
        val g = guardian("g")
        val t = Identity.loadOrGenerate(MemoryKeyStore(), "t", Role.TOY)
        val fakeRecovery = RecoveryKey.generate()
        val fake = RosterProposal.founding(f.roster.familyId(), listOf(g.publicKey(), t.publicKey(), f.me.publicKey()), fakeRecovery)
            .sign(g).cosign(t).cosign(f.me).cosignRecovery(fakeRecovery)
        Roster.verifyFounding(fake) // valid on its own...
        assertThrows<ToysealException.RosterFork> { f.roster.checkSame(fake) } // a fork of this device's v1
        assertThrows<ToysealException.RosterRejected> { Roster.verifyAnchoredChain(listOf(fake), invitation.anchor()) }
    },
    "requests are signed" to {
        val me = guardian()
        val target = RequestTarget("POST", "127.0.0.1:8080", "/v1/x", null)
        val h = signRequest(me, target, "{}".toByteArray(), 1_700_000_000UL, 60UL)
        check(h.contentDigest.startsWith("sha-256=:"))
        check(h.signatureInput.contains(me.deviceId()))
        assertThrows<ToysealException.InvalidArgument> { signRequest(me, target, ByteArray(0), 1_700_000_000UL, 3600UL) }
    },
    "a second phone pairs with a guardian's one-time code, not the printed one" to {
        val f = family()
        val code = f.phone.openPairingWindow(NOW)
        assertEq(listOf(true), pump(f.phone, f.toy).filterIsInstance<PhoneEvent.PairingWindowAck>().map { it.opened })
        f.phone.closeSession(NOW)
        pump(f.phone, f.toy)
        f.toy.disconnect()
        val dad = Phone(guardian("dad"))
        dad.pair(f.toy.printedCode())
        check(pump(dad, f.toy).any { it is PhoneEvent.PairingFailed })
        f.toy.disconnect()
        dad.handleDisconnect()
        dad.resetPairingAttempts()
        dad.pair(code)
        val events = pump(dad, f.toy)
        assertEq(f.toy.sas(), events.filterIsInstance<PhoneEvent.Sas>().single().sas)
        check(events.any { it is PhoneEvent.Paired })
    },
    "frames cross the BLE link in ATT-sized packets" to {
        val f = family()
        val fragmenter = Fragmenter(23u)
        val reassembler = Reassembler()
        for (frame in f.toy.recordAndSend(ByteArray(3000) { 5 }, EnvelopeMetadata(), NOW)) {
            val packets = fragmenter.fragment(frame)
            check(packets.all { it.size in 1..20 })
            val whole = packets.map { reassembler.push(it, NOW) }
            check(whole.dropLast(1).all { it == null } && whole.last()!!.contentEquals(frame))
        }
        val packets = Fragmenter(23u).fragment(ByteArray(100))
        val fresh = Reassembler()
        fresh.push(packets[0], NOW)
        assertThrows<ToysealException.LinkBroken> { fresh.push(packets[2], NOW) }
        assertThrows<ToysealException.InvalidArgument> { Fragmenter(7u) }
    },
    "the async CloudClient against a real toyseal serve" to {
        val server = System.getenv("TOYSEAL_TEST_SERVER")
        if (server.isNullOrEmpty()) {
            throw Skipped("TOYSEAL_TEST_SERVER (a running `toyseal serve`) not set")
        }
        val f = family()
        runBlocking {
            val cloud = CloudClient(server, f.me)
            assertEq(1UL, cloud.createFamily(f.roster.signed()).version())
            assertEq(f.roster.familyId(), cloud.roster(f.roster.anchor()).familyId())
            val text = "hello from the phone".repeat(100).toByteArray()
            val envelope = f.roster.seal(f.me, text, EnvelopeMetadata(), 7UL, ByteArray(0))
            val id = cloud.upload(f.roster.familyId(), envelope)
            val page = cloud.list(f.roster.familyId(), null, null)
            assertEq(listOf(id), page.items.map { it.id })
            assertEq(f.me.deviceId(), page.items.single().sender)
            val downloaded = cloud.download(f.roster.familyId(), id)
            check(downloaded.contentEquals(envelope))
            f.phone.sendEnvelope(downloaded, NOW)
            pump(f.phone, f.toy)
            check(f.toy.openReceived().single().contentEquals(text))
            // Its own envelope: erased at once (no pending deletion to restore).
            assertEq(null, cloud.deleteEnvelope(f.roster.familyId(), id))
            assertEq(0, cloud.list(f.roster.familyId(), null, null).items.size)
            assertEq(0, cloud.deletions(f.roster.familyId(), null, null).items.size)
            val stranger = CloudClient(server, guardian("stranger"))
            try {
                stranger.list(f.roster.familyId(), null, null)
                throw AssertionError("a stranger listed the family")
            } catch (e: ToysealException.Server) {
                check(e.status.toInt() in setOf(401, 403, 404)) { "status ${e.status}" }
                // The server's problem details come through; a stranger learns nothing more.
                check(e.kind in setOf("unauthenticated", "forbidden", "not-found")) { "kind ${e.kind}" }
                check(e.removedAtVersion == null) { "removed at ${e.removedAtVersion}" }
            }
        }
    },
)

fun main() {
    var passed = 0
    var failed = 0
    var skipped = 0
    for ((name, test) in tests) {
        try {
            test()
            passed++
            println("ok   $name")
        } catch (e: Skipped) {
            skipped++
            println("skip $name: ${e.message}")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
        }
    }
    if (skipped > 0) println("$skipped skipped")
    println("$passed passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
