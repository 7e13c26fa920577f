//! What the fallbacks ask of the owner, and what each device can show or take.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use zerotouch_core::flow2::{Fallback, ShortAuthString};

use crate::pake::PairingCode;

/// What a device offers the owner: firmware declares it, and the roles never offer a fallback
/// the device cannot carry out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OwnerInterface {
    /// The device can show eight digits and take a yes/no from the owner.
    pub display: bool,
    /// The device can take eight typed digits.
    pub keypad: bool,
}

impl OwnerInterface {
    /// A device with neither (a plug, a bulb): it can only use a label code (c), as a joiner.
    pub const HEADLESS: OwnerInterface = OwnerInterface {
        display: false,
        keypad: false,
    };
    /// A display with a touch screen or buttons: every fallback.
    pub const FULL: OwnerInterface = OwnerInterface {
        display: true,
        keypad: true,
    };
}

/// Which side of a fallback a device is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Joiner,
    Sponsor,
}

/// Whether a device with `ui` (and, for a joiner, a label record) can take part in `fallback`
/// on `side`.
pub(crate) fn can_run(fallback: Fallback, side: Side, ui: OwnerInterface, label: bool) -> bool {
    match (fallback, side) {
        (Fallback::CompareCodes, _) => ui.display,
        (Fallback::JoinerShowsCode, Side::Joiner) | (Fallback::SponsorShowsCode, Side::Sponsor) => {
            ui.display
        }
        (Fallback::JoinerShowsCode, Side::Sponsor) | (Fallback::SponsorShowsCode, Side::Joiner) => {
            ui.keypad
        }
        (Fallback::LabelCode, Side::Joiner) => label,
        (Fallback::LabelCode, Side::Sponsor) => ui.keypad,
    }
}

/// `allowed` (the firmware's list, in its order) without repeats and without what the device
/// cannot run.
pub(crate) fn usable(
    allowed: &[Fallback],
    side: Side,
    ui: OwnerInterface,
    label: bool,
) -> Vec<Fallback> {
    let mut out: Vec<Fallback> = Vec::new();
    for f in allowed {
        if !out.contains(f) && can_run(*f, side, ui, label) {
            out.push(*f);
        }
    }
    out
}

/// The text to show the owner. `Debug` leaves it out: it may hold a code, and events get
/// logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ScreenText(String);

impl ScreenText {
    /// The text, for the screen only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for ScreenText {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ScreenText(<redacted>)")
    }
}

/// What the owner must do now. [`text`](Self::text) is the English text to show; firmware
/// that localises builds its own from the typed fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerPrompt {
    /// (a) Show `code` and ask whether the other device shows the same; answer with
    /// `confirm_code(true)` only if it does.
    CompareCode {
        /// The compared code.
        code: ShortAuthString,
    },
    /// (b) Show `code` for the owner to type on the other device. A new code replaces it
    /// after every failed attempt.
    ShowCode {
        /// The code to show.
        code: PairingCode,
    },
    /// (b) Ask for the code the other device shows; answer with `enter_code`.
    EnterShownCode,
    /// (c), sponsor: ask for the code printed on the new device's label; answer with
    /// `enter_code`.
    EnterLabelCode,
    /// (c), joiner: tell the owner to type this device's label code on the other device.
    TypeLabelCodeElsewhere,
}

impl OwnerPrompt {
    /// The text to show the owner.
    pub fn text(&self) -> ScreenText {
        ScreenText(match self {
            OwnerPrompt::CompareCode { code } => format!(
                "Does the other device show {code}? Confirm on both devices only if the codes match."
            ),
            OwnerPrompt::ShowCode { code } => {
                format!("Type {} on the other device.", code.grouped())
            }
            OwnerPrompt::EnterShownCode => {
                String::from("Type the 8-digit code the other device shows.")
            }
            OwnerPrompt::EnterLabelCode => {
                String::from("Type the 8-digit code printed on the new device's label.")
            }
            OwnerPrompt::TypeLabelCodeElsewhere => String::from(
                "Type the code printed on this device's label on the device that shares the network.",
            ),
        })
    }
}
