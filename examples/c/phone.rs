//! The parent's phone, in Rust, for the C toy in `examples/c/toy.c`: it starts the toy as a
//! child process and talks frames with it over the child's stdin/stdout (a loopback link:
//! each frame is a 4-byte big-endian length and the frame; length 0 means "link dropped").
//!
//! It plays the factory too: it generates the code printed on the toy's tag and passes it as
//! the toy's last argument. Then it pairs with the code (both sides print the SAS), reconnects
//! with a Noise KK session, founds the family (roster v1, co-signed by the toy), receives the
//! toy's sealed recording, opens it and checks it is the synthetic tone the toy generated.
//!
//! ```text
//! cargo build -p toyseal-c --example c_phone
//! gcc -o toy examples/c/toy.c -Icrates/toyseal-c/include target/debug/libtoyseal_c.a -lpthread -ldl -lm
//! target/debug/examples/c_phone ./toy            # or: c_phone valgrind --leak-check=full ./toy
//! ```

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Instant;
use toyseal_core::{DeviceIdentity, FamilyId, OsRng, Role};
use toyseal_envelope::OpenOptions;
use toyseal_pairing::{
    Endpoint, EnvelopeEvent, PairingCode, PairingExpectations, Phone, PhoneEvent, Timestamp,
    ToyAnswer,
};
use toyseal_roster::RosterProposal;

type Error = Box<dyn std::error::Error>;

/// The recording the toy seals: a synthetic tone (no real voice), 8 kHz 16-bit little-endian
/// PCM, computed exactly as `tone_sample()` in toy.c does (integer arithmetic).
fn tone(samples: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples * 2);
    // A triangle wave at 400 Hz (20 samples a period), amplitude 8000.
    for i in 0..samples {
        let p = (i % 20) as i32;
        let v: i32 = if p < 10 {
            -8000 + p * 1600
        } else {
            8000 - (p - 10) * 1600
        };
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    out
}

const SAMPLES: usize = 8000 * 5;

struct LinkToToy {
    child: Child,
    to: Option<ChildStdin>,
    from: ChildStdout,
    clock: Instant,
}

impl LinkToToy {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn send(&mut self, frame: &[u8]) -> Result<(), Error> {
        let to = self.to.as_mut().ok_or("link closed")?;
        to.write_all(&u32::try_from(frame.len())?.to_be_bytes())?;
        to.write_all(frame)?;
        to.flush()?;
        Ok(())
    }

    fn recv(&mut self) -> Result<Vec<u8>, Error> {
        let mut len = [0u8; 4];
        self.from.read_exact(&mut len)?;
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        self.from.read_exact(&mut frame)?;
        Ok(frame)
    }

    /// Sends what the phone has, then feeds the toy's frames to the phone until `done` says
    /// so; returns the phone's events.
    fn exchange(
        &mut self,
        phone: &mut Phone,
        mut done: impl FnMut(&PhoneEvent) -> bool,
    ) -> Result<Vec<PhoneEvent>, Error> {
        let mut events = Vec::new();
        loop {
            while let Some(f) = phone.poll_transmit() {
                self.send(&f)?;
            }
            let mut finished = false;
            while let Some(e) = phone.poll_event() {
                finished |= done(&e);
                events.push(e);
            }
            if finished {
                return Ok(events);
            }
            let frame = self.recv()?;
            let now = self.now();
            phone.handle_frame(&frame, now, &mut OsRng);
        }
    }
}

fn run(toy_command: &[String]) -> Result<(), Error> {
    let (program, args) = toy_command
        .split_first()
        .ok_or("usage: c_phone TOY_COMMAND...")?;
    let code = PairingCode::generate(8, &mut OsRng);
    let mut child = Command::new(program)
        .args(args)
        .arg(code.digits())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let to = child.stdin.take();
    let from = child.stdout.take().ok_or("no stdout")?;
    let mut link = LinkToToy {
        child,
        to,
        from,
        clock: Instant::now(),
    };
    let parent = Arc::new(DeviceIdentity::generate(Role::Guardian, &mut OsRng));
    let mut phone = Phone::new(parent.clone());

    // 1. Pairing with the code on the tag.
    phone.pair(&code, PairingExpectations::default(), &mut OsRng)?;
    // The toy records its founder only once the parent confirms at the toy: wait for its answer.
    let events = link.exchange(&mut phone, |e| {
        matches!(
            e,
            PhoneEvent::ToyAnswered { version: None, .. } | PhoneEvent::PairingFailed(_)
        )
    })?;
    let mut paired = None;
    for e in events {
        match e {
            PhoneEvent::Sas(s) => println!("phone: SAS {s} (compare with the toy)"),
            PhoneEvent::Paired(t) => paired = Some(t),
            PhoneEvent::PairingFailed(f) => return Err(format!("pairing failed: {f:?}").into()),
            PhoneEvent::AwaitingConfirmation { seconds, .. } => {
                println!("phone: confirm on the toy (within {seconds} s)")
            }
            PhoneEvent::ToyAnswered { answer, .. } if answer != ToyAnswer::Confirmed => {
                return Err(format!("the toy did not confirm: {answer:?}").into());
            }
            _ => {}
        }
    }
    let paired = paired.ok_or("not paired")?;
    println!(
        "phone: paired with toy {}, confirmed at the toy",
        paired.identity.device_id()
    );

    // 2. Reconnect: drop the link, then a Noise KK session with the pinned key.
    phone.handle_disconnect();
    link.send(&[])?;
    phone.open_session(&paired.identity, &mut OsRng)?;
    link.exchange(&mut phone, |e| {
        matches!(
            e,
            PhoneEvent::SessionOpened(_) | PhoneEvent::SessionFailed(_)
        )
    })?
    .iter()
    .find(|e| matches!(e, PhoneEvent::SessionOpened(_)))
    .ok_or("the session did not open")?;
    println!("phone: session open");

    // 3. The family: roster v1 {parent, toy}; the toy co-signs it.
    let family = FamilyId::generate(&mut OsRng);
    // Every family keeps a printed recovery key: it signs version 1 with the parent.
    let recovery = toyseal_roster::RecoveryKey::generate(&mut OsRng)?;
    let mut v1 = RosterProposal::founding(
        family,
        vec![parent.public().clone(), paired.identity.clone()],
        *recovery.public(),
    )?
    .sign(&parent);
    v1.cosign_recovery(&recovery);
    let now = link.now();
    phone.push_rosters(std::slice::from_ref(&v1), now)?;
    let events = link.exchange(&mut phone, |e| matches!(e, PhoneEvent::Rosters(_)))?;
    let cosigned = events
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Rosters(r) => r.into_iter().next(),
            _ => None,
        })
        .ok_or("no co-signed roster")?;
    let roster = toyseal_roster::Roster::verify_founding(cosigned)?;
    println!("phone: roster v{} co-signed by the toy", roster.version());

    // 4. The toy seals a recording and delivers it.
    let events = link.exchange(&mut phone, |e| {
        matches!(
            e,
            PhoneEvent::Envelope(EnvelopeEvent::Received { .. }) | PhoneEvent::SessionClosed
        )
    })?;
    let envelope = events
        .into_iter()
        .find_map(|e| match e {
            PhoneEvent::Envelope(EnvelopeEvent::Received { envelope, .. }) => Some(envelope),
            _ => None,
        })
        .ok_or("no recording arrived")?;
    let (content, info) = roster.open(&parent, &envelope, OpenOptions::default())?;
    if content != tone(SAMPLES) {
        return Err("the recording is not the toy's tone".into());
    }
    println!(
        "phone: opened the toy's recording: {} bytes of {}, {} ms, signed by the toy ({} envelope bytes)",
        content.len(),
        info.metadata.content_type.as_deref().unwrap_or("?"),
        info.metadata.duration_ms.unwrap_or(0),
        envelope.len()
    );

    // 5. Close the session (the ack of the last chunk went out first) and the link.
    let now = link.now();
    phone.close_session(now)?;
    while let Some(f) = phone.poll_transmit() {
        link.send(&f)?;
    }
    link.to = None;
    let status = link.child.wait()?;
    if !status.success() {
        return Err(format!("the toy exited with {status}").into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => {
            println!("c example: PASS");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("c example: FAIL: {e}");
            ExitCode::FAILURE
        }
    }
}
