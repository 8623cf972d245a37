// The phone in Kotlin (the toyseal-ffi bindings, on the JVM) against the toy in C
// (examples/c/toy.c on the toyseal C ABI), as two processes: this program starts the C toy with
// ProcessBuilder and moves frames over its stdin/stdout (the pipe link of
// docs/guides/c-firmware.md: a 4-byte big-endian length, then the frame; length 0 means "link
// dropped"), as examples/c/phone.rs does in Rust. It plays the factory too: it makes the code
// printed on the toy's tag and passes it as the toy's last argument.
//
//   java -Djna.library.path=target/debug -cp … CToyTestKt TOY_COMMAND...
//
// Prints "N passed, N failed" and exits non-zero on any failure. Run by `.ci/run` (stage
// ffi-kotlin-c-toy).

import java.io.BufferedInputStream
import java.io.BufferedOutputStream
import java.io.DataInputStream
import java.io.DataOutputStream
import java.io.EOFException
import java.security.SecureRandom
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.TimeUnit
import kotlin.concurrent.thread
import toyseal.*

/** How long one toy may run before it is killed (a hung toy fails the test, not CI's clock). */
const val TOY_DEADLINE_SECONDS = 120L

/** The largest frame accepted from the toy (toy.c reads at most 1 MiB frames too). */
const val MAX_FRAME = 1 shl 20

/** The recording toy.c seals: 5 s of 8 kHz 16-bit little-endian PCM. */
const val SAMPLES = 8000 * 5

/**
 * The synthetic recording (no real voice): a 400 Hz triangle wave, amplitude 8000, computed as
 * `tone_sample()` in toy.c and `tone()` in examples/c/phone.rs do.
 */
fun tone(samples: Int): ByteArray {
    val out = ByteArray(samples * 2)
    for (i in 0 until samples) {
        val p = i % 20
        val v = if (p < 10) -8000 + p * 1600 else 8000 - (p - 10) * 1600
        out[2 * i] = (v and 0xff).toByte()
        out[2 * i + 1] = ((v shr 8) and 0xff).toByte()
    }
    return out
}

/**
 * A random 8-digit code, as the factory prints on the tag. Trivial codes (all digits equal,
 * ascending or descending) are drawn again: toyseal refuses them (PairingCode).
 */
fun factoryCode(rng: SecureRandom = SecureRandom()): String {
    while (true) {
        val digits = List(8) { rng.nextInt(10) }
        val steps = digits.zipWithNext { a, b -> (b - a + 10) % 10 }.toSet()
        if (steps != setOf(0) && steps != setOf(1) && steps != setOf(9)) return digits.joinToString("")
    }
}

/** A code that differs from `code` in its first digit (and is not trivial). */
fun wrongCode(code: String): String {
    for (d in '0'..'9') {
        if (d == code[0]) continue
        val candidate = d + code.substring(1)
        val steps = candidate.map { it - '0' }.zipWithNext { a, b -> (b - a + 10) % 10 }.toSet()
        if (steps != setOf(0) && steps != setOf(1) && steps != setOf(9)) return candidate
    }
    throw IllegalStateException("no wrong code for $code")
}

/** A KeyStore as an app writes it (here a map; on Android, Keystore-wrapped storage). */
class MemoryKeyStore : KeyStore {
    private val items = mutableMapOf<String, String>()
    override fun loadSecretKeyText(name: String): String? = items[name]
    override fun storeSecretKeyText(name: String, secretKeyText: String) {
        items[name] = secretKeyText
    }
    override fun delete(name: String): Boolean = items.remove(name) != null
}

/** The toy ended the link (it exited, or broke the framing). */
class LinkClosed(why: String) : Exception(why)

/** Pairing ended with `PhoneEvent.PairingFailed`. */
class PairingRefused(val reason: FailureReason) : Exception("pairing failed: $reason")

/**
 * The C toy as a child process, and the phone's end of the pipe link to it. Its stderr lines
 * (`toy: …`) are kept (and echoed to this program's stderr): the SAS line stands for what the
 * toy speaks.
 */
class CToy(command: List<String>, val code: String) : AutoCloseable {
    private val process = ProcessBuilder(command + code).start()
    private val toToy = DataOutputStream(BufferedOutputStream(process.outputStream))
    private val fromToy = DataInputStream(BufferedInputStream(process.inputStream))
    private val log = CopyOnWriteArrayList<String>()
    private val started = System.nanoTime()

    init {
        thread(isDaemon = true, name = "c-toy-stderr") {
            process.errorStream.bufferedReader().forEachLine {
                System.err.println("    [C toy] $it")
                log.add(it)
            }
        }
        thread(isDaemon = true, name = "c-toy-deadline") {
            if (!process.waitFor(TOY_DEADLINE_SECONDS, TimeUnit.SECONDS)) {
                System.err.println("    the C toy ran over ${TOY_DEADLINE_SECONDS}s: killed")
                process.destroyForcibly()
            }
        }
    }

    /** Milliseconds of a monotonic clock, as the phone's endpoint takes time. */
    fun now(): ULong = ((System.nanoTime() - started) / 1_000_000).toULong()

    fun send(frame: ByteArray) {
        toToy.writeInt(frame.size)
        toToy.write(frame)
        toToy.flush()
    }

    /** Tells the toy the link dropped (a zero-length frame). */
    fun drop() = send(ByteArray(0))

    /** The toy's next frame, or null once it closed its end. */
    fun recv(): ByteArray? {
        val len = try {
            fromToy.readInt()
        } catch (e: EOFException) {
            return null
        }
        if (len < 0 || len > MAX_FRAME) throw LinkClosed("the toy sent a frame length of $len")
        return ByteArray(len).also { fromToy.readFully(it) }
    }

    /**
     * Sends what the phone has, then feeds the toy's frames to the phone until `done` says so;
     * returns the phone's events.
     */
    fun exchange(phone: Phone, done: (PhoneEvent) -> Boolean): List<PhoneEvent> {
        val events = mutableListOf<PhoneEvent>()
        while (true) {
            while (true) send(phone.pollTransmit() ?: break)
            if (phone.pollClose()) {
                drop()
                phone.handleDisconnect()
            }
            var finished = false
            while (true) {
                val e = phone.pollEvent() ?: break
                events.add(e)
                finished = finished || done(e)
            }
            if (finished) return events
            val frame = recv() ?: throw LinkClosed("the toy closed the link; the phone saw $events")
            phone.handleFrame(frame, now())
        }
    }

    /** Where the toy's log stands now: `awaitLog(…, from = mark())` looks only at later lines. */
    fun mark(): Int = log.size

    /** Waits (up to 10 s) for a toy log line matching `pattern`, from line `from` on. */
    fun awaitLog(pattern: Regex, from: Int = 0): MatchResult {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (true) {
            log.drop(from).firstNotNullOfOrNull { pattern.find(it) }?.let { return it }
            if (System.nanoTime() > deadline) {
                throw AssertionError("the toy never logged /$pattern/; it logged ${log.drop(from)}")
            }
            Thread.sleep(10)
        }
    }

    /** Closes the link (the toy's stdin) and returns the toy's exit status. */
    fun finish(): Int {
        toToy.close()
        if (!process.waitFor(TOY_DEADLINE_SECONDS, TimeUnit.SECONDS)) {
            throw AssertionError("the toy did not exit after the link closed")
        }
        return process.exitValue()
    }

    override fun close() {
        process.destroyForcibly()
    }
}

fun assertEq(want: Any?, got: Any?) {
    if (want != got) throw AssertionError("expected $want, got $got")
}

/**
 * Pairs `phone` with the toy using `code`; checks the phone's SAS is the one the toy speaks
 * (what the parent compares) and returns the toy's key to pin.
 */
fun pair(toy: CToy, phone: Phone, code: String): PublicKey {
    val mark = toy.mark()
    phone.pair(code)
    // The toy records its founder only once the parent confirms at the toy (the C toy stands
    // for a parent holding its buttons): wait for the toy's answer.
    val events = toy.exchange(phone) {
        (it is PhoneEvent.ToyAnswered && it.version == null) || it is PhoneEvent.PairingFailed
    }
    events.filterIsInstance<PhoneEvent.PairingFailed>().firstOrNull()?.let { throw PairingRefused(it.reason) }
    val sas = events.filterIsInstance<PhoneEvent.Sas>().single().sas
    assertEq(6, sas.length)
    assertEq(sas, toy.awaitLog(Regex("^toy: SAS (\\d{6}) "), mark).groupValues[1])
    check(events.any { it is PhoneEvent.AwaitingConfirmation && it.version == null }) { "no confirmation asked: $events" }
    assertEq(ToyAnswer.CONFIRMED, events.filterIsInstance<PhoneEvent.ToyAnswered>().single().answer)
    toy.awaitLog(Regex("^toy: confirm the new founding guardian"), mark)
    toy.awaitLog(Regex("^toy: paired with its first guardian$"), mark)
    return events.filterIsInstance<PhoneEvent.Paired>().single().toy
}

/** Reconnects with a Noise KK session and founds the family: roster v1, co-signed by the toy. */
fun foundFamily(toy: CToy, phone: Phone, me: Identity, toyKey: PublicKey): Roster {
    phone.handleDisconnect()
    toy.drop()
    phone.openSession(toyKey)
    val opened = toy.exchange(phone) { it is PhoneEvent.SessionOpened || it is PhoneEvent.SessionFailed }
    check(opened.any { it is PhoneEvent.SessionOpened }) { "the session did not open: $opened" }
    val recovery = RecoveryKey.generate()
    val v1 = RosterProposal.founding(generateFamilyId(), listOf(me.publicKey(), toyKey), recovery)
        .sign(me).cosignRecovery(recovery)
    phone.pushRosters(listOf(v1), toy.now())
    val pushed = toy.exchange(phone) { it is PhoneEvent.Rosters }
    // The toy asked its user first (AwaitingConfirmation for version 1), then co-signed.
    check(pushed.any { it is PhoneEvent.AwaitingConfirmation && it.version == 1UL }) { "no confirmation asked: $pushed" }
    val cosigned = pushed.filterIsInstance<PhoneEvent.Rosters>().single().rosters
    val roster = Roster.verifyFounding(cosigned.single())
    assertEq(1UL, roster.version())
    assertEq(setOf(me.deviceId(), toyKey.deviceId(), recovery.signerId()), cosigned.single().signers().toSet())
    return roster
}

/** Receives the toy's sealed recording and opens it: the tone, from the toy, with its metadata. */
fun receiveRecording(toy: CToy, phone: Phone, me: Identity, roster: Roster, toyKey: PublicKey): ByteArray {
    val envelope = toy.exchange(phone) { it is PhoneEvent.EnvelopeReceived || it is PhoneEvent.SessionClosed }
        .filterIsInstance<PhoneEvent.EnvelopeReceived>().singleOrNull()?.envelope
        ?: throw AssertionError("no recording arrived")
    val opened = roster.open(me, envelope)
    check(opened.content.contentEquals(tone(SAMPLES))) { "the recording is not the toy's tone" }
    assertEq(toyKey, opened.info.sender)
    assertEq("audio/L16;rate=8000", opened.info.metadata.contentType)
    assertEq(5000u, opened.info.metadata.durationMs)
    assertEq(1UL, opened.info.rosterVersion)
    toy.awaitLog(Regex("^toy: envelope \\d+ delivered \\(${envelope.size} bytes\\)$"))
    return envelope
}

/** Ends the session and the link; the toy must exit 0 (it exits 1 unless it delivered). */
fun closeAndExpectSuccess(toy: CToy, phone: Phone) {
    phone.closeSession(toy.now())
    while (true) toy.send(phone.pollTransmit() ?: break)
    assertEq(0, toy.finish())
    toy.awaitLog(Regex("^toy: done$"))
}

val tests: List<Pair<String, (List<String>) -> Unit>> = listOf(
    "the C toy pairs with its printed code (same SAS), founds the family, and its recording opens; a reply reaches it" to { command ->
        CToy(command, factoryCode()).use { toy ->
            val me = Identity.loadOrGenerate(MemoryKeyStore(), "phone", Role.GUARDIAN)
            val phone = Phone(me)
            val toyKey = pair(toy, phone, toy.code)
            assertEq(Role.TOY, toyKey.role())
            val roster = foundFamily(toy, phone, me, toyKey)
            val envelope = receiveRecording(toy, phone, me, roster, toyKey)

            // The same envelope, streamed through an opener in BLE-sized pieces.
            val opener = roster.opener(me)
            val streamed = java.io.ByteArrayOutputStream()
            envelope.toList().chunked(244).forEach { streamed.write(opener.push(it.toByteArray())) }
            assertEq((SAMPLES * 2).toULong(), opener.finish().contentLen)
            check(streamed.toByteArray().contentEquals(tone(SAMPLES))) { "streamed content differs" }

            // A reply: the toy acknowledges every byte (opening it is not in the C ABI yet).
            val reply = roster.seal(me, "Goodnight, sleep tight!".toByteArray(),
                EnvelopeMetadata(contentType = "text/plain"), 1UL, ByteArray(0))
            val mark = toy.mark()
            val transfer = phone.sendEnvelope(reply, toy.now())
            val done = toy.exchange(phone) { it is PhoneEvent.EnvelopeDelivered || it is PhoneEvent.EnvelopeAborted }
            assertEq(listOf(transfer), done.filterIsInstance<PhoneEvent.EnvelopeDelivered>().map { it.transfer })
            val received = toy.awaitLog(Regex("^toy: envelope \\d+ received \\((\\d+) bytes\\)$"), mark)
            assertEq(reply.size.toString(), received.groupValues[1])

            closeAndExpectSuccess(toy, phone)
        }
    },
    "a wrong code is refused by the C toy (Authentication); its window stays open and the printed code pairs" to { command ->
        CToy(command, factoryCode()).use { toy ->
            val me = Identity.loadOrGenerate(MemoryKeyStore(), "phone", Role.GUARDIAN)
            val phone = Phone(me)
            val mark = toy.mark()
            try {
                pair(toy, phone, wrongCode(toy.code))
                throw AssertionError("the toy paired with a wrong code")
            } catch (e: PairingRefused) {
                assertEq(FailureReason.AUTHENTICATION, e.reason)
            }
            toy.awaitLog(Regex("^toy: pairing failed$"), mark)
            phone.handleDisconnect()
            toy.drop()

            val toyKey = pair(toy, phone, toy.code)
            val roster = foundFamily(toy, phone, me, toyKey)
            receiveRecording(toy, phone, me, roster, toyKey)
            closeAndExpectSuccess(toy, phone)
        }
    },
)

fun main(args: Array<String>) {
    if (args.isEmpty()) {
        System.err.println("usage: CToyTestKt TOY_COMMAND... (e.g. the toy built from examples/c/toy.c)")
        kotlin.system.exitProcess(2)
    }
    val command = args.toList()
    var passed = 0
    var failed = 0
    for ((name, test) in tests) {
        try {
            test(command)
            passed++
            println("ok   $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
        }
    }
    println("$passed passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
