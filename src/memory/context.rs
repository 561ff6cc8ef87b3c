//! The paragraph a returning caller's next call starts with: who they
//! are, how often they called, what is known and what is still open.
//! Empty for someone Hotline knows nothing about yet.

use super::facts::Fact;
use crate::store::{
    CallReport, Contact, PageRequest, ReportFilter, ReportStatus, Store, StoreError,
};

/// Facts given at most (the prompt must stay short).
const MAX_FACTS: usize = 12;
/// Follow-ups given at most.
const MAX_FOLLOW_UPS: usize = 5;

/// The context of contact `id` of `org_id` as stored: its active facts and
/// its latest ready report. `during` is the start (unix ms) of a call with
/// the contact that is in progress: whether that call was counted yet
/// depends on how far the control plane got with it, so when it was
/// (`last_seen_at` is not before it) it is taken off again, and the
/// context describes the calls before this one either way.
pub async fn load(
    store: &Store,
    org_id: &str,
    id: &str,
    during: Option<i64>,
) -> Result<String, StoreError> {
    let mut contact = store.get_contact(org_id, id).await?;
    let (facts, _) = store.contact_memory(org_id, id).await?;
    let filter = ReportFilter {
        contact_id: Some(id.to_owned()),
        ..ReportFilter::default()
    };
    let page = PageRequest {
        limit: Some(10),
        cursor: None,
    };
    let reports = store.list_reports(org_id, &filter, &page).await?;
    let last = reports
        .items
        .iter()
        .find(|r| r.status == ReportStatus::Ready);
    if let Some(start) = during
        && contact.last_seen_at.is_some_and(|seen| seen >= start)
    {
        contact.call_count = (contact.call_count - 1).max(0);
        contact.last_seen_at = last.map(|r| r.created_at);
    }
    Ok(next_call_context(&contact, &facts, last))
}

/// The context for `contact`'s next call, from its active `facts` and its
/// latest ready report; empty when there is nothing to say.
pub fn next_call_context(contact: &Contact, facts: &[Fact], last: Option<&CallReport>) -> String {
    if facts.is_empty() && last.is_none() {
        return String::new();
    }
    let name = facts
        .iter()
        .find(|f| f.slot == "name" || f.slot == "caller_name")
        .map(|f| f.value.clone())
        .or_else(|| contact.display_name.clone())
        .or_else(|| last.and_then(|r| r.caller_name.clone()));
    let mut out = format!(
        "Returning caller: {} ({}).",
        name.as_deref().unwrap_or("name not known"),
        contact.phone_number
    );
    if contact.call_count > 0 {
        let times = if contact.call_count == 1 {
            "once".to_owned()
        } else {
            format!("{} times", contact.call_count)
        };
        out.push_str(&format!(" They have called {times}"));
        if let Some(at) = contact
            .last_seen_at
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        {
            out.push_str(&format!(", most recently on {}", at.strftime("%Y-%m-%d")));
        }
        out.push('.');
    }
    let known: Vec<String> = facts
        .iter()
        .take(MAX_FACTS)
        .map(|f| format!("{}: {}", f.slot.replace('_', " "), f.value))
        .collect();
    if !known.is_empty() {
        out.push_str(&format!(" Known: {}.", known.join("; ")));
    }
    if let Some(r) = last {
        if let Some(s) = r.summary.as_deref().filter(|s| !s.trim().is_empty()) {
            out.push_str(&format!(" Last call: {}", s.trim()));
            if !s.trim().ends_with('.') {
                out.push('.');
            }
        }
        let open: Vec<&str> = r
            .follow_ups
            .iter()
            .take(MAX_FOLLOW_UPS)
            .map(|f| f.text.as_str())
            .collect();
        if !open.is_empty() {
            out.push_str(&format!(" Open follow-ups: {}.", open.join("; ")));
        }
    }
    out
}
