//! Other requests a partner must answer on time: Freedom of Information and
//! Environmental Information requests (stream `foi/{id}`) and complaints (stream
//! `complaint/{id}`). Their deadlines are the projections' work; here only their order.

use crate::recorded::{Command, Fact, Recorded};
use crate::refusal::{require_text, Refusal, Rule};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

#[derive(schemars::JsonSchema, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Regime {
    Foi,
    Eir,
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum FoiFact {
    FoiRequestReceived {
        regime: Regime,
        channel: String,
    },
    FoiResponded {
        outcome: String,
        #[serde(default)]
        exemptions: Vec<String>,
    },
}

impl Fact for FoiFact {
    const STREAM_KIND: &'static str = "foi";
}

#[derive(schemars::JsonSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ComplaintFact {
    ComplaintReceived {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    ComplaintAcknowledged {},
    ComplaintResolved {
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        notes: Option<String>,
    },
}

impl Fact for ComplaintFact {
    const STREAM_KIND: &'static str = "complaint";
}

/// Where a simple request stands: received by whom, answered or not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub handler: Option<String>,
    pub acknowledged: bool,
    pub closed: bool,
}

impl Progress {
    fn check(&self, actor: &str, opening: bool, closing: bool) -> Result<(), Refusal> {
        let order =
            |problem: &str, remedy: &str| Err(Refusal::rule(Rule::ProcessOrder, problem, remedy));
        match (&self.handler, opening) {
            (Some(_), true) => order("this request is already recorded", "use a new id"),
            (None, false) => order(
                "no request is recorded under this id",
                "record its receipt first",
            ),
            (Some(_), false) if self.closed => order(
                "this request is closed",
                "nothing is recorded after its answer",
            ),
            (Some(h), false) if h != actor => Err(Refusal::rule(
                Rule::ActingPartnerIsParty,
                format!("{h} handles this request"),
                "the partner that received it records its progress",
            )),
            _ => {
                let _ = closing;
                Ok(())
            }
        }
    }
}

pub type FoiCommand = Command<FoiFact>;
pub type ComplaintCommand = Command<ComplaintFact>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FoiRequest(pub Progress);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Complaint(pub Progress);

impl Aggregate for FoiRequest {
    const TYPE: &'static str = "foi";
    type Command = FoiCommand;
    type Event = Recorded<FoiFact>;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        command.micros()?;
        let opening = matches!(command.action, FoiFact::FoiRequestReceived { .. });
        self.0.check(&command.by.partner, opening, !opening)?;
        match &command.action {
            FoiFact::FoiRequestReceived { channel, .. } => require_text("channel", channel)?,
            FoiFact::FoiResponded { outcome, .. } => require_text("outcome", outcome)?,
        }
        sink.write(command.record(command.action.clone()), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event.fact {
            FoiFact::FoiRequestReceived { .. } => self.0.handler = Some(event.by.partner),
            FoiFact::FoiResponded { .. } => self.0.closed = true,
        }
    }
}

impl Aggregate for Complaint {
    const TYPE: &'static str = "complaint";
    type Command = ComplaintCommand;
    type Event = Recorded<ComplaintFact>;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        command.micros()?;
        let opening = matches!(command.action, ComplaintFact::ComplaintReceived { .. });
        self.0.check(&command.by.partner, opening, false)?;
        match &command.action {
            ComplaintFact::ComplaintReceived { channel, .. } => require_text("channel", channel)?,
            ComplaintFact::ComplaintAcknowledged {} if self.0.acknowledged => {
                return Err(Refusal::rule(
                    Rule::ProcessOrder,
                    "already acknowledged",
                    "acknowledge once",
                ))
            }
            ComplaintFact::ComplaintAcknowledged {} => {}
            ComplaintFact::ComplaintResolved { outcome, .. } => require_text("outcome", outcome)?,
        }
        sink.write(command.record(command.action.clone()), self)
            .await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event.fact {
            ComplaintFact::ComplaintReceived { .. } => self.0.handler = Some(event.by.partner),
            ComplaintFact::ComplaintAcknowledged {} => self.0.acknowledged = true,
            ComplaintFact::ComplaintResolved { .. } => self.0.closed = true,
        }
    }
}
