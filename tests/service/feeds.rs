//! Feeds: a DPO's deadlines as an iCalendar feed, read back with a real iCalendar
//! parser, through a bearer token and through a calendar token in the URL; and
//! registers as CSV, limited by need-to-know like every read.

use crate::support::{first_start, problem};
use ical::parser::ical::component::IcalCalendar;
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn parse(text: &str) -> IcalCalendar {
    let mut calendars = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
    let calendar = calendars
        .next()
        .expect("one calendar")
        .expect("the feed parses as iCalendar");
    assert!(calendars.next().is_none());
    calendar
}

fn property<'a>(
    event: &'a ical::parser::ical::component::IcalEvent,
    name: &str,
) -> Option<&'a ical::property::Property> {
    event.properties.iter().find(|p| p.name == name)
}

pub async fn journey(url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let (server, admin, api) = first_start(data.path(), url.as_deref(), &[]);
    let dpo = api.user(&admin, "housing-dpo", "housing", "dpo").await;
    let pc = api
        .user(&admin, "housing-pc", "housing", "practitioner")
        .await;
    let ico = api.user(&admin, "ico", "ico", "regulator").await;

    // The deadlines as JSON, once the views have the demo.
    api.rows_until("/v1/views/breaches", &ico, |rows| rows.len() == 2)
        .await;
    let (s, v) = api.get("/v1/deadlines", &dpo).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let items = v["items"].as_array().unwrap().clone();
    assert!(!items.is_empty(), "the demo gives housing deadlines: {v}");

    // The same deadlines as a calendar.
    let (s, body, headers) = api
        .call(Method::GET, "/v1/deadlines.ics", Some(&dpo), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/calendar; charset=utf-8");
    let text = body.as_str().unwrap().to_string();
    let calendar = parse(&text);
    assert_eq!(calendar.events.len(), items.len());
    let mut uids = std::collections::HashSet::new();
    for (event, item) in calendar.events.iter().zip(&items) {
        let uid = property(event, "UID").unwrap().value.clone().unwrap();
        assert!(uids.insert(uid), "UIDs are unique");
        let start = property(event, "DTSTART").unwrap();
        let due = item["due"].as_str().unwrap();
        if due.len() == 10 {
            assert_eq!(start.value.as_deref(), Some(due.replace('-', "").as_str()));
            let params = start.params.clone().unwrap_or_default();
            assert!(
                params.iter().any(|(k, v)| k == "VALUE" && v == &["DATE"]),
                "{params:?}"
            );
        } else {
            assert!(start.value.as_deref().unwrap().ends_with('Z'));
        }
        let summary = property(event, "SUMMARY").unwrap().value.clone().unwrap();
        assert!(summary.contains(item["key"].as_str().unwrap()), "{summary}");
        assert_eq!(event.alarms.len(), 1);
    }

    // A calendar token: in the URL, no header; it opens this feed and nothing else,
    // and stops working when revoked.
    let (s, feed, _) = api
        .call(Method::POST, "/v1/calendar/feeds", Some(&dpo), None)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{feed}");
    let path = feed["path"].as_str().unwrap().to_string();
    let (s, same, _) = api.call(Method::GET, &path, None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(parse(same.as_str().unwrap()).events.len(), items.len());
    let calendar_token = path
        .trim_start_matches("/v1/calendar/")
        .trim_end_matches(".ics")
        .to_string();
    let (s, v) = api.get("/v1/deadlines", &calendar_token).await;
    problem(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, v, _) = api
        .call(Method::GET, &format!("/v1/calendar/{dpo}.ics"), None, None)
        .await;
    problem(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");
    let (s, _, _) = api
        .call(
            Method::DELETE,
            &format!("/v1/calendar/feeds/{}", feed["id"].as_str().unwrap()),
            Some(&dpo),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v, _) = api.call(Method::GET, &path, None, None).await;
    problem(s, &v, StatusCode::UNAUTHORIZED, "unauthenticated");

    // Registers as CSV: what the caller may read, every row once.
    let (s, body, headers) = api
        .call(Method::GET, "/v1/registers/breaches.csv", Some(&ico), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    let csv = body.as_str().unwrap().to_string();
    let mut lines = csv.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..3], ["key", "status", "due"]);
    assert!(
        header.contains(&"detected_by") || header.len() > 7,
        "{header:?}"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("breach/br-2025-0001,"));
    let (_, police_csv, _) = api
        .call(
            Method::GET,
            "/v1/registers/breaches.csv",
            Some(&api.user(&admin, "police-dpo", "police", "dpo").await),
            None,
        )
        .await;
    let police_rows = police_csv
        .as_str()
        .unwrap()
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(
        police_rows, 2,
        "the header and the one breach the police are party to"
    );
    let (s, v) = api.get("/v1/registers/breaches.csv", &pc).await;
    problem(s, &v, StatusCode::FORBIDDEN, "forbidden");
    let (s, v) = api.get("/v1/registers/nothing.csv", &ico).await;
    problem(s, &v, StatusCode::NOT_FOUND, "not-found");
    let _: Value = v;
    assert!(server.stop().success());
}
