//! RFC 4028 session-timer bookkeeping.

use hotline_sip::dialog::session_timer::{
    MIN_SE_FLOOR, Refresher, SessionExpires, SessionTimer, UasDecision, find_min_se, min_se_header,
    retry_after_422, supports_timer, uas_decide,
};
use proptest::prelude::*;
use std::time::{Duration, Instant};

fn headers(lines: &[&str]) -> rsip::Headers {
    let text = format!(
        "INVITE sip:h@192.0.2.10 SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.9;branch=z9hG4bK1\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:h@y>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n{}Content-Length: 0\r\n\r\n",
        lines.iter().map(|l| format!("{l}\r\n")).collect::<String>()
    );
    rsip::Request::try_from(text.as_str()).unwrap().headers
}

#[test]
fn parse_and_generate() {
    let se = SessionExpires::parse("1800;refresher=uac").unwrap();
    assert_eq!(se.interval, 1800);
    assert_eq!(se.refresher, Some(Refresher::Uac));
    assert_eq!(se.value(), "1800;refresher=uac");
    assert_eq!(
        SessionExpires::parse(" 90 ; Refresher = UAS ")
            .unwrap()
            .refresher,
        Some(Refresher::Uas)
    );
    assert_eq!(SessionExpires::parse("600").unwrap().refresher, None);
    assert_eq!(
        SessionExpires::parse("600;refresher=me").unwrap().refresher,
        None
    );
    assert_eq!(SessionExpires::parse("soon"), None);
    assert_eq!(SessionExpires::parse(""), None);
    // Compact form `x` and Min-SE are found in parsed messages.
    let h = headers(&[
        "x: 1200;refresher=uas",
        "Min-SE: 120",
        "Supported: 100rel, timer",
    ]);
    assert_eq!(
        SessionExpires::find(&h),
        Some(SessionExpires {
            interval: 1200,
            refresher: Some(Refresher::Uas)
        })
    );
    assert_eq!(find_min_se(&h), Some(120));
    assert!(supports_timer(&h));
    assert!(!supports_timer(&headers(&["Supported: 100rel"])));
    assert_eq!(
        se.header().to_string(),
        "Session-Expires: 1800;refresher=uac"
    );
    assert_eq!(min_se_header(90).to_string(), "Min-SE: 90");
}

#[test]
fn uas_rejects_short_intervals_with_422() {
    let h = headers(&["Supported: timer", "Session-Expires: 60"]);
    assert_eq!(uas_decide(&h, 90, None), UasDecision::Reject { min_se: 90 });
    let h = headers(&["Supported: timer", "Session-Expires: 300"]);
    assert_eq!(
        uas_decide(&h, 600, None),
        UasDecision::Reject { min_se: 600 }
    );
    // Our Min-SE is never below the RFC floor of 90 s.
    let h = headers(&["Session-Expires: 60"]);
    assert_eq!(
        uas_decide(&h, 30, None),
        UasDecision::Reject {
            min_se: MIN_SE_FLOOR
        }
    );
}

#[test]
fn uas_picks_the_refresher() {
    // UAC supports timers and leaves the choice: it refreshes, Require: timer.
    let h = headers(&["Supported: timer", "Session-Expires: 1800"]);
    assert_eq!(
        uas_decide(&h, 90, None),
        UasDecision::Accept {
            session_expires: Some(SessionExpires {
                interval: 1800,
                refresher: Some(Refresher::Uac)
            }),
            require_timer: true,
        }
    );
    // UAC asks us to refresh.
    let h = headers(&["Supported: timer", "Session-Expires: 1800;refresher=uas"]);
    let UasDecision::Accept {
        session_expires: Some(se),
        ..
    } = uas_decide(&h, 90, None)
    else {
        panic!("expected accept");
    };
    assert_eq!(se.refresher, Some(Refresher::Uas));
    let timer = SessionTimer::as_uas(se);
    assert!(timer.we_refresh);
    // A proxy inserted Session-Expires but the UAC does not support timers:
    // we must refresh, and must not Require timer.
    let h = headers(&["Session-Expires: 1800;refresher=uac"]);
    assert_eq!(
        uas_decide(&h, 90, None),
        UasDecision::Accept {
            session_expires: Some(SessionExpires {
                interval: 1800,
                refresher: Some(Refresher::Uas)
            }),
            require_timer: false,
        }
    );
    // No timer asked: none unless we want one, then at least both minimums.
    let h = headers(&["Supported: timer", "Min-SE: 900"]);
    assert_eq!(
        uas_decide(&h, 90, None),
        UasDecision::Accept {
            session_expires: None,
            require_timer: false
        }
    );
    let UasDecision::Accept {
        session_expires: Some(se),
        require_timer,
    } = uas_decide(&h, 90, Some(600))
    else {
        panic!("expected a timer");
    };
    assert_eq!(se.interval, 900);
    assert!(require_timer);
}

#[test]
fn refresh_at_half_and_bye_before_expiry() {
    let t0 = Instant::now();
    let ours = SessionTimer {
        interval: Duration::from_secs(1800),
        we_refresh: true,
    };
    assert_eq!(ours.refresh_at(t0), Some(t0 + Duration::from_secs(900)));
    assert_eq!(ours.expires_at(t0), None);
    let theirs = SessionTimer {
        interval: Duration::from_secs(1800),
        we_refresh: false,
    };
    assert_eq!(theirs.refresh_at(t0), None);
    assert_eq!(
        theirs.expires_at(t0),
        Some(t0 + Duration::from_secs(1800 - 32))
    );
    let short = SessionTimer {
        interval: Duration::from_secs(90),
        we_refresh: false,
    };
    assert_eq!(short.expires_at(t0), Some(t0 + Duration::from_secs(60)));
}

#[test]
fn uac_reads_the_2xx() {
    let t = SessionTimer::as_uac(&headers(&[
        "Require: timer",
        "Session-Expires: 600;refresher=uac",
    ]))
    .unwrap();
    assert!(t.we_refresh);
    assert_eq!(t.interval, Duration::from_secs(600));
    let t = SessionTimer::as_uac(&headers(&["Session-Expires: 600;refresher=uas"])).unwrap();
    assert!(!t.we_refresh);
    assert_eq!(SessionTimer::as_uac(&headers(&[])), None);
}

#[test]
fn on_422_raise_to_min_se_once() {
    assert_eq!(retry_after_422(90, &headers(&["Min-SE: 1800"])), Some(1800));
    assert_eq!(
        retry_after_422(1800, &headers(&["Min-SE: 1800"])),
        None,
        "no progress: give up"
    );
    assert_eq!(retry_after_422(90, &headers(&[])), None);
}

proptest! {
    #[test]
    fn parsers_never_panic(s in "\\PC{0,80}") {
        let _ = SessionExpires::parse(&s);
        let h = rsip::Headers::from(vec![
            rsip::Header::Other("Session-Expires".into(), s.clone()),
            rsip::Header::Other("Min-SE".into(), s.clone()),
        ]);
        let _ = SessionExpires::find(&h);
        let _ = find_min_se(&h);
        let _ = uas_decide(&h, 90, Some(1800));
        let _ = retry_after_422(90, &h);
        let _ = SessionTimer::as_uac(&h);
    }
}
