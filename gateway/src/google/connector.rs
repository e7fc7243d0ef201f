//! The Google Calendar connector as the registration list sees it: its data
//! contract. Its consent flow, sync worker and switch-off still live in this
//! module tree of the gateway (see the README's layout section).

use scopegate_contract::{BuiltInContract, Connector, SwitchOffOption};

/// The Google Calendar connector.
pub struct GoogleCalendar;

impl Connector for GoogleCalendar {
    fn id(&self) -> &'static str {
        super::CONNECTOR
    }

    fn switch_off_options(&self) -> &'static [SwitchOffOption] {
        &[SwitchOffOption {
            name: "delete_events",
            label: "Also delete the events scopegate created in the fee earners' calendars",
        }]
    }

    fn contract(&self) -> BuiltInContract {
        BuiltInContract {
            manifest: include_str!("../../../schemas/google-calendar/manifest.json"),
            files: &[
                (
                    "diary-entry.json",
                    include_str!("../../../schemas/google-calendar/diary-entry.json"),
                ),
                (
                    "event.json",
                    include_str!("../../../schemas/google-calendar/event.json"),
                ),
                (
                    "event-time.json",
                    include_str!("../../../schemas/google-calendar/event-time.json"),
                ),
            ],
        }
    }
}
