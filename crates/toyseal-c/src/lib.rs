#![doc = include_str!("../README.md")]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]

mod result;
mod sealer;
mod storage;
mod toy;

pub use result::{toyseal_result, toyseal_result_str};
pub use sealer::{
    toyseal_seal_options, toyseal_sealer, toyseal_sealer_checkpoint, toyseal_sealer_finish,
    toyseal_sealer_free, toyseal_sealer_new, toyseal_sealer_read, toyseal_sealer_update,
};
pub use storage::{TOYSEAL_ROSTER_SLOT_CAP, toyseal_slot, toyseal_storage};
pub use toy::{
    toyseal_change_entry, toyseal_confirmation, toyseal_event, toyseal_event_kind, toyseal_toy,
    toyseal_toy_confirm, toyseal_toy_confirmation_entry, toyseal_toy_decline,
    toyseal_toy_device_id, toyseal_toy_disconnect, toyseal_toy_envelope_request,
    toyseal_toy_factory_reset, toyseal_toy_free, toyseal_toy_handle_frame,
    toyseal_toy_handle_timeout, toyseal_toy_new, toyseal_toy_open_recovery_window,
    toyseal_toy_poll_event, toyseal_toy_poll_transmit, toyseal_toy_press_pair_button,
    toyseal_toy_recovery_window, toyseal_toy_roster_version, toyseal_toy_send_envelope,
    toyseal_toy_send_envelope_begin, toyseal_toy_send_envelope_bytes,
    toyseal_toy_set_confirmation_window, toyseal_toy_set_recovery_window,
};
