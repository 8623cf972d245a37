//! `toyseal invite`: the anchored invitation (docs/spec/roster.md §6) as text and as a QR code
//! drawn in the terminal.

use crate::cli::InviteArgs;
use crate::error::{Error, Place};
use crate::files::read_small_text;
use crate::keygen::print_line;
use crate::roster::verify_files;
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;
use serde::Deserialize;
use std::io;
use toyseal_roster::Invitation;

/// The only key `invite` reads from the client config file; the others belong to the cloud
/// commands.
#[derive(Deserialize)]
struct ServerOnly {
    server: Option<String>,
}

/// Verifies the chain and prints the invitation to its last version.
pub fn invite(args: &InviteArgs) -> Result<(), Error> {
    let roster = verify_files(&args.chain, None)?;
    let server = match (&args.server, &args.config) {
        (Some(s), _) => Some(s.clone()),
        (None, Some(path)) => {
            let (place, text) = read_small_text(Some(path), 64 * 1024)?;
            serde_json::from_str::<ServerOnly>(&text)
                .map_err(|e| Error::Config {
                    place,
                    reason: e.to_string(),
                })?
                .server
        }
        (None, None) => None,
    };
    let invitation =
        Invitation::new(roster.signed(), server.as_deref()).map_err(|source| Error::Roster {
            what: "--server".into(),
            source,
        })?;
    let text = invitation.to_string();
    let mut out = io::stdout().lock();
    if !args.no_qr {
        print_line(&mut out, Place::Stdout, &qr(&text)?)?;
    }
    print_line(&mut out, Place::Stdout, &text)
}

/// The QR code of `text` in Unicode half blocks, light modules drawn, for dark terminals
/// (the `qrcode` crate's terminal rendering); quiet zone included.
pub(crate) fn qr(text: &str) -> Result<String, Error> {
    // An invitation is at most ~400 bytes; a QR code holds 2953: this cannot fail, but a
    // failure is reported, not panicked on.
    let code = QrCode::new(text.as_bytes())
        .map_err(|e| Error::Usage(format!("the invitation does not fit a QR code: {e}")))?;
    Ok(code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Light)
        .light_color(Dense1x2::Dark)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrcode::Color;

    /// Reads the half-block drawing back into modules and compares them with the code's own
    /// matrix: what the terminal shows is exactly the QR code of the invitation, quiet zone
    /// included (light modules are drawn, dark ones left blank).
    #[test]
    fn the_drawing_is_exactly_the_invitations_qr_code() {
        let text = "toyseal-invite:1:7c7560c0f58ed754e1f344a1851f6f92:1:\
                    be27e1d36de0b74283378392cb89869b0e527b8cd17bc9088935845329f96fbe:\
                    http://127.0.0.1:8080";
        let drawing = qr(text).unwrap();
        let code = QrCode::new(text.as_bytes()).unwrap();
        let (w, quiet) = (code.width(), 4);
        let colors = code.to_colors();
        let rows: Vec<Vec<char>> = drawing.lines().map(|l| l.chars().collect()).collect();
        assert_eq!(rows.len(), (w + 2 * quiet).div_ceil(2));
        for y in 0..w + 2 * quiet {
            for x in 0..w + 2 * quiet {
                let c = rows[y / 2][x];
                let drawn = match (c, y % 2) {
                    ('█', _) | ('▀', 0) | ('▄', 1) => true,
                    (' ', _) | ('▀', 1) | ('▄', 0) => false,
                    other => panic!("unexpected {other:?}"),
                };
                let inside = (quiet..w + quiet).contains(&x) && (quiet..w + quiet).contains(&y);
                let light = !inside || colors[(y - quiet) * w + (x - quiet)] == Color::Light;
                assert_eq!(drawn, light, "module ({x}, {y})");
            }
        }
    }
}
