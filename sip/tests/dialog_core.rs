//! RFC 3261 §12 dialogs with realistic INVITE exchanges.

use hotline_sip::dialog::{Dialog, DialogError, DialogId, DialogState, RequestCheck, Role};
use proptest::prelude::*;
use rsip::headers::UntypedHeader;
use rsip::{Header, Method};

const VIA: &str = "SIP/2.0/UDP 192.0.2.10:5060;rport";

/// An INVITE from a carrier through two record-routing proxies, as Hotline
/// (the UAS) receives it.
const INBOUND_INVITE: &str = "INVITE sip:hotline@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bKp2\r\n\
Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bKp1\r\n\
Via: SIP/2.0/UDP 198.51.100.9:5060;branch=z9hG4bKuac\r\n\
Max-Forwards: 68\r\n\
Record-Route: <sip:203.0.113.2;lr>\r\n\
Record-Route: <sip:203.0.113.1;lr;ftag=abc>, <sip:edge.carrier.example;lr>\r\n\
From: \"+1 555 0100\" <sip:+15550100@carrier.example>;tag=carrier-tag\r\n\
To: <sip:hotline@hotline.example.com>\r\n\
Call-ID: 3848276298220188511@carrier.example\r\n\
CSeq: 101 INVITE\r\n\
Contact: <sip:+15550100@198.51.100.9:5060;transport=udp>\r\n\
Content-Length: 0\r\n\r\n";

fn inbound_invite() -> rsip::Request {
    rsip::Request::try_from(INBOUND_INVITE).unwrap()
}

fn ok_for(invite: &rsip::Request, to_tag: &str) -> rsip::Response {
    let mut headers = rsip::Headers::default();
    for h in invite.headers.iter() {
        match h {
            Header::Via(_) | Header::From(_) | Header::CallId(_) | Header::CSeq(_) => {
                headers.push(h.clone())
            }
            Header::RecordRoute(_) => headers.push(h.clone()),
            Header::To(t) => {
                headers.push(rsip::headers::To::new(format!("{};tag={to_tag}", t.value())).into())
            }
            _ => {}
        }
    }
    headers.push(rsip::headers::Contact::new("<sip:hotline@192.0.2.10:5060>").into());
    rsip::Response {
        status_code: 200.into(),
        version: rsip::Version::V2,
        headers,
        body: vec![],
    }
}

fn values<'a>(req: &'a rsip::Request, pick: fn(&'a Header) -> Option<&'a str>) -> Vec<&'a str> {
    req.headers.iter().filter_map(pick).collect()
}
fn route(h: &Header) -> Option<&str> {
    match h {
        Header::Route(r) => Some(r.value()),
        _ => None,
    }
}
fn cseq(req: &rsip::Request) -> String {
    req.headers
        .iter()
        .find_map(|h| match h {
            Header::CSeq(c) => Some(c.value().to_owned()),
            _ => None,
        })
        .unwrap()
}
fn top_via(req: &rsip::Request) -> String {
    req.headers
        .iter()
        .find_map(|h| match h {
            Header::Via(v) => Some(v.value().to_owned()),
            _ => None,
        })
        .unwrap()
}

fn uas_dialog() -> Dialog {
    let invite = inbound_invite();
    Dialog::new_uas(
        &invite,
        &ok_for(&invite, "hl-1"),
        "<sip:hotline@192.0.2.10:5060>",
    )
    .unwrap()
}

#[test]
fn uas_dialog_from_invite_and_200() {
    let d = uas_dialog();
    assert_eq!(
        d.id,
        DialogId {
            call_id: "3848276298220188511@carrier.example".into(),
            local_tag: "hl-1".into(),
            remote_tag: "carrier-tag".into(),
        }
    );
    assert_eq!(d.state, DialogState::Confirmed);
    assert_eq!(d.role, Role::Uas);
    assert_eq!(d.remote_seq, Some(101));
    assert_eq!(d.local_seq, None);
    assert_eq!(
        d.remote_target,
        "sip:+15550100@198.51.100.9:5060;transport=udp"
    );
    // §12.1.1: Record-Route in order, comma-separated values split.
    assert_eq!(
        d.route_set,
        vec![
            "<sip:203.0.113.2;lr>",
            "<sip:203.0.113.1;lr;ftag=abc>",
            "<sip:edge.carrier.example;lr>"
        ]
    );
    assert_eq!(d.local_uri(), "sip:hotline@hotline.example.com");
    assert_eq!(d.remote_uri(), "sip:+15550100@carrier.example");
    assert!(!d.secure);
    assert!(d.matches_request(&bye_from_carrier(102)));
}

#[test]
fn early_uas_dialog_from_183_and_refusals() {
    let invite = inbound_invite();
    let mut ringing = ok_for(&invite, "hl-2");
    ringing.status_code = 183.into();
    let d = Dialog::new_uas(&invite, &ringing, "<sip:hotline@192.0.2.10>").unwrap();
    assert_eq!(d.state, DialogState::Early);
    let mut trying = ringing.clone();
    trying.status_code = 100.into();
    assert_eq!(
        Dialog::new_uas(&invite, &trying, "<sip:h@x>"),
        Err(DialogError::NotDialogCreating(100))
    );
    // A 200 without our To tag cannot make a dialog.
    let mut untagged = ok_for(&invite, "x");
    untagged.headers.retain(|h| !matches!(h, Header::To(_)));
    untagged
        .headers
        .push(rsip::headers::To::new("<sip:hotline@hotline.example.com>").into());
    assert_eq!(
        Dialog::new_uas(&invite, &untagged, "<sip:h@x>"),
        Err(DialogError::MissingTag("To"))
    );
}

#[test]
fn bye_as_uas_follows_the_loose_route_set() {
    let mut d = uas_dialog();
    let bye = d.request(Method::Bye, VIA, vec![], vec![]).unwrap();
    assert_eq!(bye.method, Method::Bye);
    // rsip renders `transport=UDP`; transport values compare case-insensitively.
    assert_eq!(
        bye.uri,
        rsip::Uri::try_from("sip:+15550100@198.51.100.9:5060;transport=udp").unwrap()
    );
    assert_eq!(
        values(&bye, route),
        vec![
            "<sip:203.0.113.2;lr>",
            "<sip:203.0.113.1;lr;ftag=abc>",
            "<sip:edge.carrier.example;lr>"
        ]
    );
    let text = bye.to_string();
    assert!(
        text.contains("From: <sip:hotline@hotline.example.com>;tag=hl-1\r\n"),
        "{text}"
    );
    assert!(
        text.contains("To: \"+1 555 0100\" <sip:+15550100@carrier.example>;tag=carrier-tag\r\n")
    );
    assert!(text.contains("Call-ID: 3848276298220188511@carrier.example\r\n"));
    assert!(text.contains("Max-Forwards: 70\r\n"));
    assert!(text.contains("Content-Length: 0\r\n"));
    assert!(!text.contains("Contact:"), "BYE carries no Contact");
    assert!(top_via(&bye).starts_with("SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bK"));
    let first = d.local_seq.unwrap();
    assert_eq!(cseq(&bye), format!("{first} BYE"));
    assert!(first < 1 << 31);
    // The wire form parses back.
    let reparsed = rsip::Request::try_from(text.as_str()).unwrap();
    assert_eq!(values(&reparsed, route).len(), 3);

    let info = d
        .request(
            Method::Info,
            VIA,
            vec![rsip::headers::ContentType::new("application/dtmf-relay").into()],
            b"Signal=5\r\nDuration=160\r\n".to_vec(),
        )
        .unwrap();
    assert_eq!(cseq(&info), format!("{} INFO", first + 1));
    assert!(info.to_string().contains("Content-Length: 24\r\n"));
    assert_ne!(
        top_via(&info),
        top_via(&bye),
        "each request gets its own branch"
    );
}

#[test]
fn reinvite_update_refer_carry_contact() {
    let mut d = uas_dialog();
    for m in [
        Method::Invite,
        Method::Update,
        Method::Refer,
        Method::Notify,
    ] {
        let r = d.request(m, VIA, vec![], vec![]).unwrap();
        assert!(
            r.to_string()
                .contains("Contact: <sip:hotline@192.0.2.10:5060>\r\n"),
            "{m} needs Contact"
        );
    }
}

/// Hotline calls out through an outbound proxy; the callee's 180 and 200
/// come back through two record-routing proxies.
const OUTBOUND_INVITE: &str = "INVITE sip:+15557654321@carrier.example SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKout1;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:hotline@hotline.example.com>;tag=hl-out\r\n\
To: <sip:+15557654321@carrier.example>\r\n\
Call-ID: out-77@hotline.example.com\r\n\
CSeq: 20 INVITE\r\n\
Contact: <sip:hotline@192.0.2.10:5060>\r\n\
Content-Length: 0\r\n\r\n";

fn outbound_invite() -> rsip::Request {
    rsip::Request::try_from(OUTBOUND_INVITE).unwrap()
}

fn uac_response(code: u16, to_tag: &str, contact: &str) -> rsip::Response {
    let text = format!(
        "SIP/2.0 {code} X\r\n\
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKout1;rport=5060\r\n\
Record-Route: <sip:p2.carrier.example;lr>\r\n\
Record-Route: <sip:p1.carrier.example;lr>\r\n\
From: <sip:hotline@hotline.example.com>;tag=hl-out\r\n\
To: <sip:+15557654321@carrier.example>;tag={to_tag}\r\n\
Call-ID: out-77@hotline.example.com\r\n\
CSeq: 20 INVITE\r\n\
Contact: <{contact}>\r\n\
Content-Length: 0\r\n\r\n"
    );
    rsip::Response::try_from(text.as_str()).unwrap()
}

#[test]
fn uac_early_dialog_confirmed_by_200_and_forks_are_separate() {
    let invite = outbound_invite();
    let ringing = uac_response(180, "callee-a", "sip:a@198.51.100.20");
    let mut d = Dialog::new_uac(&invite, &ringing).unwrap();
    assert_eq!(d.state, DialogState::Early);
    assert_eq!(d.role, Role::Uac);
    assert_eq!(d.local_seq, Some(20));
    assert_eq!(d.remote_seq, None);
    // §12.1.2: reversed Record-Route.
    assert_eq!(
        d.route_set,
        vec!["<sip:p1.carrier.example;lr>", "<sip:p2.carrier.example;lr>"]
    );
    assert_eq!(d.remote_target, "sip:a@198.51.100.20");

    let ok = uac_response(200, "callee-a", "sip:a@198.51.100.21");
    assert!(d.matches_response(&ok));
    d.receive_response(&ok).unwrap();
    assert_eq!(d.state, DialogState::Confirmed);
    assert_eq!(d.remote_target, "sip:a@198.51.100.21");

    // A forked 200 from another branch of the fork: other To tag, other dialog.
    let forked = uac_response(200, "callee-b", "sip:b@198.51.100.30");
    assert!(!d.matches_response(&forked));
    let other = Dialog::new_uac(&invite, &forked).unwrap();
    assert_ne!(other.id, d.id);
    assert_eq!(
        DialogId::of_received_response(&forked),
        Some(other.id.clone())
    );
    assert_eq!(other.id.remote_tag, "callee-b");
    assert_eq!(other.id.local_tag, d.id.local_tag);
    assert_eq!(other.state, DialogState::Confirmed);
}

#[test]
fn early_dialog_ends_on_a_failure_final() {
    let invite = outbound_invite();
    let mut d = Dialog::new_uac(&invite, &uac_response(183, "t", "sip:a@198.51.100.20")).unwrap();
    d.receive_response(&uac_response(486, "t", "sip:a@198.51.100.20"))
        .unwrap();
    assert_eq!(d.state, DialogState::Terminated);
}

#[test]
fn ack_for_2xx_reuses_the_invite_number() {
    let invite = outbound_invite();
    let mut d = Dialog::new_uac(&invite, &uac_response(200, "c", "sip:a@198.51.100.20")).unwrap();
    let ack = d.ack(VIA, vec![], vec![]).unwrap();
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(cseq(&ack), "20 ACK");
    assert_eq!(ack.uri.to_string(), "sip:a@198.51.100.20");
    assert_eq!(values(&ack, route).len(), 2);
    assert!(
        !top_via(&ack).contains("z9hG4bKout1"),
        "ACK for 2xx is a new transaction"
    );
    assert!(top_via(&ack).contains("branch=z9hG4bK"));

    // A re-INVITE moves both the CSeq and the ACK's number.
    let reinvite = d.request(Method::Invite, VIA, vec![], vec![]).unwrap();
    assert_eq!(cseq(&reinvite), "21 INVITE");
    let bye = d.request(Method::Bye, VIA, vec![], vec![]).unwrap();
    assert_eq!(cseq(&bye), "22 BYE");
    assert_eq!(cseq(&d.ack(VIA, vec![], vec![]).unwrap()), "21 ACK");
}

#[test]
fn strict_router_goes_in_the_request_uri() {
    let invite = outbound_invite();
    let mut ok = uac_response(200, "c", "sip:callee@198.51.100.20:5070");
    // Replace the loose routes with an RFC 2543 strict router and a loose one.
    ok.headers.retain(|h| !matches!(h, Header::RecordRoute(_)));
    ok.headers.push(
        rsip::headers::RecordRoute::new(
            "<sip:loose.example;lr>, <sip:strict.example;transport=udp>",
        )
        .into(),
    );
    let mut d = Dialog::new_uac(&invite, &ok).unwrap();
    assert_eq!(d.route_set[0], "<sip:strict.example;transport=udp>");
    let bye = d.request(Method::Bye, VIA, vec![], vec![]).unwrap();
    assert_eq!(
        bye.uri,
        rsip::Uri::try_from("sip:strict.example;transport=udp").unwrap()
    );
    assert_eq!(
        values(&bye, route),
        vec!["<sip:loose.example;lr>", "<sip:callee@198.51.100.20:5070>"]
    );
}

#[test]
fn no_route_set_targets_the_contact_directly() {
    let invite = outbound_invite();
    let mut ok = uac_response(200, "c", "sips:callee@198.51.100.20:5061");
    ok.headers.retain(|h| !matches!(h, Header::RecordRoute(_)));
    let mut d = Dialog::new_uac(&invite, &ok).unwrap();
    let bye = d.request(Method::Bye, VIA, vec![], vec![]).unwrap();
    assert_eq!(bye.uri.to_string(), "sips:callee@198.51.100.20:5061");
    assert!(values(&bye, route).is_empty());
}

fn in_dialog_from_carrier(method: &str, seq: u32, contact: Option<&str>) -> rsip::Request {
    let contact = contact
        .map(|c| format!("Contact: <{c}>\r\n"))
        .unwrap_or_default();
    rsip::Request::try_from(
        format!(
            "{method} sip:hotline@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 203.0.113.2:5060;branch=z9hG4bKin{seq}\r\n\
Max-Forwards: 69\r\n\
From: \"+1 555 0100\" <sip:+15550100@carrier.example>;tag=carrier-tag\r\n\
To: <sip:hotline@hotline.example.com>;tag=hl-1\r\n\
Call-ID: 3848276298220188511@carrier.example\r\n\
CSeq: {seq} {method}\r\n\
{contact}Content-Length: 0\r\n\r\n"
        )
        .as_str(),
    )
    .unwrap()
}

fn bye_from_carrier(seq: u32) -> rsip::Request {
    in_dialog_from_carrier("BYE", seq, None)
}

#[test]
fn receiving_requests_orders_cseq_and_refreshes_the_target() {
    let mut d = uas_dialog();
    let reinvite = in_dialog_from_carrier("INVITE", 102, Some("sip:+15550100@198.51.100.99:5060"));
    assert_eq!(
        DialogId::of_received_request(&reinvite).as_ref(),
        Some(&d.id)
    );
    assert_eq!(
        d.receive_request(&reinvite).unwrap(),
        RequestCheck::Accept {
            target_refreshed: true
        }
    );
    assert_eq!(d.remote_target, "sip:+15550100@198.51.100.99:5060");
    assert_eq!(d.remote_seq, Some(102));
    // The ACK carries the INVITE's number: not out of order.
    assert_eq!(
        d.receive_request(&in_dialog_from_carrier("ACK", 102, None))
            .unwrap(),
        RequestCheck::Accept {
            target_refreshed: false
        }
    );
    // An INFO overtaken by the re-INVITE: 500.
    assert_eq!(
        d.receive_request(&in_dialog_from_carrier("INFO", 101, None))
            .unwrap(),
        RequestCheck::RejectOutOfOrder
    );
    assert_eq!(d.remote_seq, Some(102));
    // INFO is no target refresh, even with a Contact.
    assert_eq!(
        d.receive_request(&in_dialog_from_carrier(
            "INFO",
            103,
            Some("sip:elsewhere@198.51.100.1")
        ))
        .unwrap(),
        RequestCheck::Accept {
            target_refreshed: false
        }
    );
    assert_eq!(d.remote_target, "sip:+15550100@198.51.100.99:5060");
    // UPDATE refreshes the target (RFC 3311).
    d.receive_request(&in_dialog_from_carrier(
        "UPDATE",
        104,
        Some("sip:+15550100@198.51.100.77"),
    ))
    .unwrap();
    assert_eq!(d.remote_target, "sip:+15550100@198.51.100.77");
    // A request for another dialog does not match.
    let mut stranger = bye_from_carrier(105);
    stranger.headers.retain(|h| !matches!(h, Header::From(_)));
    stranger
        .headers
        .push(rsip::headers::From::new("<sip:x@carrier.example>;tag=other").into());
    assert!(!d.matches_request(&stranger));
    assert!(d.matches_request(&bye_from_carrier(105)));
    d.receive_request(&bye_from_carrier(105)).unwrap();
    assert_eq!(d.state, DialogState::Terminated);
}

#[test]
fn uac_learns_the_remote_seq_from_the_first_request() {
    let invite = outbound_invite();
    let mut d = Dialog::new_uac(&invite, &uac_response(200, "c", "sip:a@198.51.100.20")).unwrap();
    let mut notify = rsip::Request::try_from(
        "NOTIFY sip:hotline@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKn1\r\n\
From: <sip:+15557654321@carrier.example>;tag=c\r\n\
To: <sip:hotline@hotline.example.com>;tag=hl-out\r\n\
Call-ID: out-77@hotline.example.com\r\n\
CSeq: 1 NOTIFY\r\n\
Event: refer\r\n\
Subscription-State: active\r\n\
Content-Type: message/sipfrag\r\n\
Content-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n",
    )
    .unwrap();
    assert!(d.matches_request(&notify));
    assert_eq!(
        d.receive_request(&notify).unwrap(),
        RequestCheck::Accept {
            target_refreshed: false
        }
    );
    assert_eq!(d.remote_seq, Some(1));
    // Our answer to it: same Via, From, To, Call-ID, CSeq.
    let resp = d.response(&notify, 200, vec![], vec![]);
    let text = resp.to_string();
    assert!(text.starts_with("SIP/2.0 200"), "{text}");
    assert!(text.contains("Via: SIP/2.0/UDP 198.51.100.20;branch=z9hG4bKn1\r\n"));
    assert!(text.contains("To: <sip:hotline@hotline.example.com>;tag=hl-out\r\n"));
    assert!(text.contains("CSeq: 1 NOTIFY\r\n"));
    assert!(rsip::Response::try_from(text.as_str()).is_ok());
    // A 481 to our request ends the dialog (§12.2.1.2).
    notify.headers.retain(|h| !matches!(h, Header::CSeq(_)));
    let bye = d.request(Method::Bye, VIA, vec![], vec![]).unwrap();
    let gone = rsip::Response::try_from(
        format!(
            "SIP/2.0 481 Call/Transaction Does Not Exist\r\n{}\r\nFrom: <sip:hotline@hotline.example.com>;tag=hl-out\r\nTo: <sip:+15557654321@carrier.example>;tag=c\r\nCall-ID: out-77@hotline.example.com\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
            format_args!("Via: {}", top_via(&bye)),
            cseq(&bye)
        )
        .as_str(),
    )
    .unwrap();
    d.receive_response(&gone).unwrap();
    assert_eq!(d.state, DialogState::Terminated);
}

#[test]
fn response_adds_our_tag_when_missing() {
    let d = uas_dialog();
    let mut options = in_dialog_from_carrier("OPTIONS", 110, None);
    options.headers.retain(|h| !matches!(h, Header::To(_)));
    options
        .headers
        .push(rsip::headers::To::new("<sip:hotline@hotline.example.com>").into());
    let text = d.response(&options, 200, vec![], vec![]).to_string();
    assert!(
        text.contains("To: <sip:hotline@hotline.example.com>;tag=hl-1\r\n"),
        "{text}"
    );
}

#[test]
fn response_status_line_carries_the_rfc_reason_phrase() {
    let d = uas_dialog();
    let options = in_dialog_from_carrier("OPTIONS", 111, None);
    let text = d.response(&options, 486, vec![], vec![]).to_string();
    assert!(text.starts_with("SIP/2.0 486 Busy Here\r\n"), "{text}");
    assert!(
        text.contains("To: <sip:hotline@hotline.example.com>;tag=hl-1\r\n"),
        "{text}"
    );
    assert!(text.contains("Content-Length: 0\r\n"), "{text}");
}

#[test]
fn missing_headers_are_errors_not_panics() {
    let invite = inbound_invite();
    let ok = ok_for(&invite, "t");
    let mut no_contact = invite.clone();
    no_contact
        .headers
        .retain(|h| !matches!(h, Header::Contact(_)));
    assert_eq!(
        Dialog::new_uas(&no_contact, &ok, "<sip:h@x>"),
        Err(DialogError::MissingHeader("Contact"))
    );
    let mut bad_cseq = invite.clone();
    bad_cseq.headers.retain(|h| !matches!(h, Header::CSeq(_)));
    bad_cseq
        .headers
        .push(rsip::headers::CSeq::new("eleven INVITE").into());
    assert_eq!(
        Dialog::new_uas(&bad_cseq, &ok, "<sip:h@x>"),
        Err(DialogError::BadHeader("CSeq"))
    );
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\r\n]{0,80}",
        "[<>;=,\"a-z:@0-9. ]{0,60}",
        Just("<sip:a@b;lr>;tag=".to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dialog_creation_and_checks_never_panic(
        from in header_value(), to in header_value(), contact in header_value(),
        rr in header_value(), cseq in header_value(), call_id in header_value(),
    ) {
        let mut req = outbound_invite();
        req.headers.retain(|h| !matches!(h, Header::From(_) | Header::Contact(_) | Header::CSeq(_) | Header::CallId(_)));
        req.headers.push(rsip::headers::From::new(from.clone()).into());
        req.headers.push(rsip::headers::Contact::new(contact.clone()).into());
        req.headers.push(rsip::headers::CSeq::new(cseq.clone()).into());
        req.headers.push(rsip::headers::CallId::new(call_id).into());
        req.headers.push(rsip::headers::RecordRoute::new(rr.clone()).into());
        let mut resp = uac_response(200, "t", "sip:a@198.51.100.20");
        resp.headers.retain(|h| !matches!(h, Header::To(_) | Header::Contact(_) | Header::RecordRoute(_)));
        resp.headers.push(rsip::headers::To::new(to).into());
        resp.headers.push(rsip::headers::Contact::new(contact).into());
        resp.headers.push(rsip::headers::RecordRoute::new(rr).into());
        let _ = DialogId::of_received_request(&req);
        let _ = DialogId::of_received_response(&resp);
        if let Ok(mut d) = Dialog::new_uac(&req, &resp) {
            let _ = d.request(Method::Bye, VIA, vec![], vec![]);
            let _ = d.ack(VIA, vec![], vec![]);
            let _ = d.receive_request(&req);
            let _ = d.receive_response(&resp);
            let _ = d.response(&req, 200, vec![], vec![]);
        }
        let _ = Dialog::new_uas(&req, &resp, "<sip:h@x>");
    }

    #[test]
    fn header_helpers_never_panic(s in "\\PC{0,120}") {
        let _ = hotline_sip::message::cseq_parts(&s);
        let _ = hotline_sip::dialog::replace_branch(&s, "z9hG4bKx");
        let _ = hotline_sip::message::split_list(&s);
        let _ = hotline_sip::dialog::headers::addr_uri(&s);
        let _ = hotline_sip::dialog::headers::addr_param(&s, "tag");
        let _ = hotline_sip::dialog::headers::uri_has_lr(&s);
    }
}
