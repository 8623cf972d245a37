/* A toy written in C on the toyseal C ABI: it boots (identity from its "flash"), opens a
 * pairing window, pairs with the parent's phone (printing the SAS it would speak: known once
 * the phone's PAIR_CONFIRM verified, just before PAIRED; a PAIRING_FAILED right after PAIRED
 * means the phone's parent saw a different SAS and the pairing was undone), records its
 * founder and co-signs roster v1 only after a confirmation at the toy (CONFIRMATION_REQUESTED:
 * this example stands for a parent holding the toy's two buttons for 3 s, a gesture a child
 * does not make in play, and confirms at once), accepts a session, seals a synthetic 5-second recording while "recording" it
 * (1 KiB chunks, a signed checkpoint every second) into its storage (a temporary file stands
 * for the toy's flash) and delivers it over the session streamed from there: the toy's RAM
 * holds one delivery window, never the recording (docs/guides/c-firmware.md §6). A failed
 * pairing (wrong code) leaves the window open for another try; a reply envelope from the
 * phone is acknowledged and logged (opening it is not in the C ABI yet). It exits 0 once the
 * phone closed the link after the recording was delivered, 1 otherwise.
 *
 * The link is stdin/stdout: each frame is a 4-byte big-endian length and the frame; a length
 * of 0 means the link dropped. The phone (examples/c/phone.rs in Rust, or
 * crates/toyseal-ffi/tests/kotlin/CToyTest.kt in Kotlin) starts this program and passes the
 * code printed on the tag as the last argument. Logs go to stderr, one `toy: ...` line per
 * step; the SAS line (`toy: SAS 042917`) stands for the toy's speaker, which the Kotlin phone
 * compares with its own (docs/guides/c-firmware.md, "The pipe link").
 *
 * Build: see docs/guides/c-firmware.md, or .ci/run (stages c-example, ffi-kotlin-c-toy). */

#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "toyseal.h"

#define SAMPLE_RATE 8000
#define SECONDS 5
#define FRAME_CAP 4096

/* ---- the toy's "flash": a few slots in RAM (a real toy writes them to flash) ---- */

/* Identity, FailureCount, Sequence and Founder take at most 256 bytes; Roster (the signed
 * roster the toy verified, restored at boot) up to TOYSEAL_ROSTER_SLOT_CAP. */
#define SLOTS 5

typedef struct {
    uint8_t data[SLOTS][TOYSEAL_ROSTER_SLOT_CAP];
    size_t len[SLOTS];
} flash;

static int flash_load(void *ctx, toyseal_slot slot, uint8_t *buf, size_t cap, size_t *len) {
    flash *f = ctx;
    if ((unsigned)slot >= SLOTS || f->len[slot] > cap) return 1;
    memcpy(buf, f->data[slot], f->len[slot]);
    *len = f->len[slot];
    return 0;
}

static int flash_store(void *ctx, toyseal_slot slot, const uint8_t *data, size_t len) {
    flash *f = ctx;
    if ((unsigned)slot >= SLOTS || len > sizeof f->data[0]) return 1;
    memcpy(f->data[slot], data, len);
    f->len[slot] = len;
    return 0;
}

/* ---- the link ---- */

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int read_exact(uint8_t *buf, size_t len) {
    return len == 0 || fread(buf, 1, len, stdin) == len;
}

static int write_frame(const uint8_t *frame, size_t len) {
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    return fwrite(hdr, 1, 4, stdout) == 4 && fwrite(frame, 1, len, stdout) == len;
}

static int fail(const char *what, toyseal_result r) {
    fprintf(stderr, "toy: %s: %s\n", what, toyseal_result_str((int)r));
    return 0;
}

/* Sends every frame the toy has queued (growing the buffer if one does not fit). */
static int flush_frames(toyseal_toy *toy) {
    size_t cap = FRAME_CAP;
    uint8_t *buf = malloc(cap);
    if (!buf) return 0;
    for (;;) {
        size_t len = 0;
        toyseal_result r = toyseal_toy_poll_transmit(toy, buf, cap, &len);
        if (r == TOYSEAL_RESULT_BUFFER_TOO_SMALL) {
            uint8_t *bigger = realloc(buf, len);
            if (!bigger) break;
            buf = bigger;
            cap = len;
            continue;
        }
        if (r != TOYSEAL_RESULT_OK) { fail("poll_transmit", r); break; }
        if (len == 0) { free(buf); return fflush(stdout) == 0; }
        if (!write_frame(buf, len)) break;
    }
    free(buf);
    return 0;
}

/* ---- the recording ---- */

static int16_t tone_sample(size_t i) {
    int p = (int)(i % 20); /* a 400 Hz triangle wave, as tone() in phone.rs */
    return (int16_t)(p < 10 ? -8000 + p * 1600 : 8000 - (p - 10) * 1600);
}

/* Moves the sealer's output into the recording's storage (a file standing for flash) through a
 * small buffer. */
static int drain(toyseal_sealer *s, FILE *storage, size_t *written_total) {
    uint8_t piece[512];
    for (;;) {
        size_t n = 0;
        toyseal_result r = toyseal_sealer_read(s, piece, sizeof piece, &n);
        if (r != TOYSEAL_RESULT_OK) return fail("sealer_read", r);
        if (n == 0) return 1;
        if (fwrite(piece, 1, n, storage) != n) return 0;
        *written_total += n;
    }
}

/* Seals SECONDS of tone as it is "recorded": 20 ms of audio per update, a checkpoint every
 * second, the output drained after every call. */
static int record_and_seal(toyseal_toy *toy, FILE *storage, size_t *envelope_len) {
    static const char content_type[] = "audio/L16;rate=8000";
    toyseal_seal_options opts = {
        .chunk_size_log2 = 10,
        .segment_size_log2 = 10,
        .created_unix = 0,
        .duration_ms = SECONDS * 1000,
        .content_type = (const uint8_t *)content_type,
        .content_type_len = sizeof content_type - 1,
    };
    if (fseek(storage, 0, SEEK_SET) != 0) return 0; /* one recording at a time */
    toyseal_sealer *s = NULL;
    toyseal_result r = toyseal_sealer_new(toy, &opts, &s);
    if (r != TOYSEAL_RESULT_OK) return fail("sealer_new", r);
    size_t total = 0, per_update = SAMPLE_RATE / 50; /* 20 ms */
    int ok = 1;
    uint8_t pcm[2 * (SAMPLE_RATE / 50)];
    for (size_t i = 0; ok && i < (size_t)SAMPLE_RATE * SECONDS; i += per_update) {
        for (size_t k = 0; k < per_update; k++) {
            int16_t v = tone_sample(i + k);
            pcm[2 * k] = (uint8_t)(v & 0xff);
            pcm[2 * k + 1] = (uint8_t)((uint16_t)v >> 8);
        }
        r = toyseal_sealer_update(s, pcm, sizeof pcm);
        if (r != TOYSEAL_RESULT_OK) ok = fail("sealer_update", r);
        if (ok && (i + per_update) % SAMPLE_RATE == 0) {
            r = toyseal_sealer_checkpoint(s);
            if (r != TOYSEAL_RESULT_OK) ok = fail("sealer_checkpoint", r);
        }
        ok = ok && drain(s, storage, &total);
    }
    if (ok) {
        r = toyseal_sealer_finish(s);
        if (r != TOYSEAL_RESULT_OK) ok = fail("sealer_finish", r);
    }
    ok = ok && drain(s, storage, &total);
    toyseal_sealer_free(s);
    ok = ok && fflush(storage) == 0;
    if (ok) fprintf(stderr, "toy: sealed %d s of audio into %zu envelope bytes\n", SECONDS, total);
    *envelope_len = total;
    return ok;
}

/* ---- delivery, streamed from storage ---- */

/* Supplies the bytes the delivery window takes now, one flash page (512 bytes) at a time.
 * Call it after starting the delivery and after every frame from the phone: each
 * acknowledgement opens the window again. */
static int supply_envelope(toyseal_toy *toy, FILE *storage) {
    uint8_t page[512];
    for (;;) {
        uint32_t transfer = 0;
        size_t offset = 0, len = 0;
        toyseal_result r = toyseal_toy_envelope_request(toy, &transfer, &offset, &len);
        if (r != TOYSEAL_RESULT_OK) return fail("envelope_request", r);
        if (len == 0) return 1; /* nothing needed until the phone acknowledges more */
        if (len > sizeof page) len = sizeof page;
        if (offset > (size_t)LONG_MAX || fseek(storage, (long)offset, SEEK_SET) != 0 ||
            fread(page, 1, len, storage) != len) {
            fprintf(stderr, "toy: reading the recording from storage failed\n");
            return 0;
        }
        r = toyseal_toy_send_envelope_bytes(toy, transfer, offset, page, len, now_ms());
        if (r != TOYSEAL_RESULT_OK) return fail("send_envelope_bytes", r);
    }
}

/* ---- the toy's loop ---- */

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: toy CODE\n");
        return 2;
    }
    const char *code = argv[argc - 1];
    flash *f = calloc(1, sizeof *f);
    if (!f) return 1;
    toyseal_storage storage = {.ctx = f, .load = flash_load, .store = flash_store};
    toyseal_toy *toy = NULL;
    int delivered = 0, ok = 1;
    FILE *recording = tmpfile(); /* the toy's flash for recordings */
    if (!recording) ok = 0;

    /* Boot: identity from flash (generated on first boot), then the button opens a window. */
    toyseal_result r = toyseal_toy_new(&storage, (const uint8_t *)code, strlen(code), &toy);
    if (r != TOYSEAL_RESULT_OK) ok = fail("toy_new", r);
    if (ok && (r = toyseal_toy_press_pair_button(toy, now_ms())) != TOYSEAL_RESULT_OK)
        ok = fail("press_pair_button", r);
    if (ok) fprintf(stderr, "toy: pairing window open\n");

    uint8_t *frame = malloc(1u << 20);
    if (!frame) ok = 0;
    while (ok) {
        uint8_t hdr[4];
        if (!read_exact(hdr, 4)) break; /* the phone closed the link: done */
        size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
        if (len > (1u << 20) || !read_exact(frame, len)) { ok = 0; break; }
        r = len == 0 ? toyseal_toy_disconnect(toy) : toyseal_toy_handle_frame(toy, frame, len, now_ms());
        if (r != TOYSEAL_RESULT_OK) { ok = fail("handle_frame", r); break; }

        toyseal_event ev;
        while (ok && toyseal_toy_poll_event(toy, &ev) == TOYSEAL_RESULT_OK &&
               ev.kind != TOYSEAL_EVENT_KIND_NONE) {
            switch (ev.kind) {
            case TOYSEAL_EVENT_KIND_SAS:
                fprintf(stderr, "toy: SAS %06u (spoken to the parent)\n", (unsigned)ev.sas);
                break;
            case TOYSEAL_EVENT_KIND_CONFIRMATION_REQUESTED:
                /* Speak or blink the summary, then wait for the deliberate gesture until
                 * ev.expires_ms. Here the "parent" holds the buttons at once. */
                if (ev.confirmation == TOYSEAL_CONFIRMATION_FOUNDER) {
                    fprintf(stderr, "toy: confirm the new founding guardian? (hold both buttons)\n");
                } else {
                    fprintf(stderr, "toy: confirm %sroster v%llu: %u added, %u removed, %u changed%s? (hold both buttons)\n",
                            ev.confirmation == TOYSEAL_CONFIRMATION_RECOVERY ? "recovery " : "",
                            (unsigned long long)ev.roster_version, (unsigned)ev.added,
                            (unsigned)ev.removed, (unsigned)ev.changed,
                            ev.recovery_key_changed ? ", new recovery key" : "");
                    for (uint32_t i = 0; ok && i < ev.added + ev.removed + ev.changed; i++) {
                        toyseal_change_entry line;
                        if ((r = toyseal_toy_confirmation_entry(toy, i, &line)) != TOYSEAL_RESULT_OK)
                            ok = fail("confirmation_entry", r);
                        else
                            fprintf(stderr, "toy:   %s a %s\n",
                                    line.change == 1 ? "adds" : line.change == 2 ? "removes" : "changes",
                                    line.role == 2 ? "guardian" : "toy");
                    }
                }
                if (ok && (r = toyseal_toy_confirm(toy, now_ms())) != TOYSEAL_RESULT_OK)
                    ok = fail("confirm", r);
                break;
            case TOYSEAL_EVENT_KIND_CONFIRMATION_EXPIRED:
            case TOYSEAL_EVENT_KIND_CONFIRMATION_DECLINED:
            case TOYSEAL_EVENT_KIND_CONFIRMATION_CANCELLED:
                fprintf(stderr, "toy: nothing confirmed (event %d)\n", (int)ev.kind);
                break;
            case TOYSEAL_EVENT_KIND_PAIRED:
                fprintf(stderr, "toy: paired with its first guardian\n");
                break;
            case TOYSEAL_EVENT_KIND_SESSION_OPENED:
                fprintf(stderr, "toy: session open\n");
                break;
            case TOYSEAL_EVENT_KIND_ROSTER_APPLIED: {
                fprintf(stderr, "toy: co-signed roster v%llu\n", (unsigned long long)ev.roster_version);
                uint32_t transfer = 0;
                size_t envelope_len = 0;
                ok = record_and_seal(toy, recording, &envelope_len);
                if (ok && (r = toyseal_toy_send_envelope_begin(toy, envelope_len, &transfer)) !=
                              TOYSEAL_RESULT_OK)
                    ok = fail("send_envelope_begin", r);
                break;
            }
            case TOYSEAL_EVENT_KIND_ENVELOPE_DELIVERED:
                fprintf(stderr, "toy: envelope %u delivered (%llu bytes)\n", (unsigned)ev.transfer,
                        (unsigned long long)ev.length);
                delivered = 1;
                break;
            case TOYSEAL_EVENT_KIND_PAIRING_FAILED:
                /* A wrong code (or tampering): "try again"; the window stays open. */
                fprintf(stderr, "toy: pairing failed\n");
                break;
            case TOYSEAL_EVENT_KIND_ENVELOPE_RECEIVED:
                /* A reply from the parents (opening it is not in the C ABI yet). */
                fprintf(stderr, "toy: envelope %u received (%llu bytes)\n", (unsigned)ev.transfer,
                        (unsigned long long)ev.length);
                break;
            case TOYSEAL_EVENT_KIND_ENVELOPE_ABORTED:
            case TOYSEAL_EVENT_KIND_ROSTER_REFUSED:
            case TOYSEAL_EVENT_KIND_ROSTER_FORK:
                fprintf(stderr, "toy: event %d\n", (int)ev.kind);
                ok = 0;
                break;
            case TOYSEAL_EVENT_KIND_CLOSE_REQUESTED:
                ok = toyseal_toy_disconnect(toy) == TOYSEAL_RESULT_OK;
                break;
            case TOYSEAL_EVENT_KIND_RECOVERY_PROVED:
            case TOYSEAL_EVENT_KIND_RECOVERY_REFUSED:
            case TOYSEAL_EVENT_KIND_RECOVERY_WINDOW_CLOSED:
                /* Only after the long press (toyseal_toy_open_recovery_window), which this
                 * example never makes: show the recovery window's state (a light). */
                fprintf(stderr, "toy: recovery event %d\n", (int)ev.kind);
                break;
            default:
                break;
            }
        }
        ok = ok && supply_envelope(toy, recording) && flush_frames(toy);
    }
    free(frame);
    if (recording) fclose(recording);
    toyseal_toy_free(toy);
    free(f);
    if (!ok || !delivered) {
        fprintf(stderr, "toy: FAIL\n");
        return 1;
    }
    fprintf(stderr, "toy: done\n");
    return 0;
}
