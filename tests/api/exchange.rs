//! Data exchange (issue 16): the demo mission's IATI file validates against the IATI 2.03 schema; HXL CSV
//! exports (streamed, neutralised) re-import without duplicates; real-world-shaped files import (HXL
//! attributes, semicolons, Latin-1, COD gazetteers with an HXL row, French columns and ADM3); the pool
//! report's totals equal the ledger statement's.

use std::path::PathBuf;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Session, TestApp};
use qip_pool::features::demo::DEMO_PASSWORD;

fn seeded() -> TestApp {
    seeded_with(|_| {})
}

fn seeded_with(customize: impl FnOnce(&mut qip_pool::config::Settings)) -> TestApp {
    let app = TestApp::spawn_with(customize, |_| {});
    let auth =
        qip_pool::features::identity::AuthRuntime::new(&crate::support::test_settings(&app.db.url()).auth)
            .unwrap();
    qip_pool::features::demo::seed(&mut app.conn(), &auth).unwrap();
    app
}

fn pool_id(app: &TestApp, s: &Session) -> String {
    let pools: Value = app.get_as("/api/v1/pools", &s.access).json().unwrap();
    pools["items"][0]["id"].as_str().unwrap().to_owned()
}

fn proposal_titled(app: &TestApp, s: &Session, title: &str) -> Value {
    let list: Value = app
        .get_as("/api/v1/proposals?limit=200", &s.access)
        .json()
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == title)
        .cloned()
        .unwrap_or_else(|| panic!("no proposal {title}: {list}"))
}

fn get_text(app: &TestApp, path: &str, token: &str) -> (u16, String, String) {
    let res = app.send(Method::GET, path, Some(token), None);
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ctype, res.text().unwrap())
}

fn refund(app: &TestApp, finance: &Session, proposal_id: &str, amount: &str) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/proposals/{proposal_id}/refunds")))
        .bearer_auth(&finance.access)
        .header("Idempotency-Key", format!("refund-{amount}"))
        .json(&json!({"amount": amount, "reason": "Unspent balance returned"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.text());
}

/// The standards directory (`../shared/standards` beside the repository), if present.
fn standards_dir() -> Option<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut candidates: Vec<PathBuf> = std::env::var_os("QIP_STANDARDS_DIR")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(manifest.join("../shared/standards"));
    candidates.push(manifest.join("../../shared/standards"));
    candidates
        .into_iter()
        .find(|p| p.join("iati-2.03/iati-activities-schema.xsd").exists())
}

fn xmllint_present() -> bool {
    Command::new("xmllint").arg("--version").output().is_ok()
}

/// Codes of an IATI codelist file.
fn codelist(dir: &std::path::Path, name: &str) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join(format!("iati-2.03/codelists/{name}.xml"))).unwrap();
    text.split("<code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .map(str::to_owned)
        .collect()
}

/// Every value of `attr` on `<element ` in the document.
fn attribute_values(xml: &str, element: &str, attr: &str) -> Vec<String> {
    xml.split(&format!("<{element} "))
        .skip(1)
        .filter_map(|s| {
            let tag = s.split('>').next()?;
            let start = tag.find(&format!("{attr}=\""))? + attr.len() + 2;
            Some(tag[start..].split('"').next()?.to_owned())
        })
        .collect()
}

#[test]
fn the_demo_missions_iati_file_validates_against_the_schema_and_its_codelists() {
    let app = seeded();
    let finance = app.login("finance", DEMO_PASSWORD);
    let implementing = proposal_titled(&app, &finance, "Classroom repairs in Tawila");
    refund(&app, &finance, implementing["id"].as_str().unwrap(), "250.00");
    let pool = pool_id(&app, &finance);
    let (status, ctype, xml) = get_text(
        &app,
        &format!("/api/v1/pools/{pool}/exports/iati-activities.xml"),
        &finance.access,
    );
    assert_eq!(status, 200, "{xml}");
    assert!(ctype.starts_with("application/xml"), "{ctype}");

    // The fund and the projects from approval onward (approved, implementing, completed, closed, cancelled).
    assert_eq!(xml.matches("<iati-activity ").count(), 6, "{xml}");
    assert_eq!(xml.matches("hierarchy=\"2\"").count(), 5);
    assert_eq!(
        xml.matches("<related-activity ").count(),
        10,
        "each child links its parent and back"
    );
    assert!(xml.contains("<iati-identifier>XI-IATI-QIPDEMO-QIP-"), "{xml}");
    for absent in [
        "Borehole for Kalma",
        "Checkpoint shelter",
        "Monument to the battalion",
        "Football pitch",
    ] {
        assert!(!xml.contains(absent), "{absent} was never approved");
    }
    // Confidential notes, flag texts and people's names never appear.
    for secret in [
        "confidential",
        "UNICEF drills here",
        "(demo) <",
        "cimic",
        "finance (demo)",
        "dsrsg",
    ] {
        assert!(!xml.contains(secret), "{secret} leaked");
    }
    // The refund is a negative disbursement, never type 7.
    assert!(xml.contains(">-250.00</value>"), "{xml}");
    assert!(
        xml.contains("<transaction-type code=\"11\"/>") && xml.contains("<transaction-type code=\"1\"/>")
    );
    assert!(!xml.contains("<transaction-type code=\"7\"/>"));
    assert!(xml.contains("<sector vocabulary=\"10\" code=\"EDU\""), "{xml}");
    assert!(
        xml.contains("<location ref=\"XY0102\">"),
        "adm2 P-code as the location ref"
    );

    let Some(standards) = standards_dir() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have ../shared/standards"
        );
        eprintln!("NOTICE: ../shared/standards not found; IATI schema validation skipped");
        return;
    };
    for (element, attr, list) in [
        ("transaction-type", "code", "TransactionType"),
        ("activity-status", "code", "ActivityStatus"),
        ("activity-date", "type", "ActivityDateType"),
        ("participating-org", "role", "OrganisationRole"),
        ("participating-org", "type", "OrganisationType"),
        ("reporting-org", "type", "OrganisationType"),
        ("sector", "vocabulary", "SectorVocabulary"),
        ("exactness", "code", "GeographicExactness"),
        ("location-class", "code", "GeographicLocationClass"),
        ("feature-designation", "code", "LocationType"),
        ("value", "currency", "Currency"),
    ] {
        let codes = codelist(&standards, list);
        let used = attribute_values(&xml, element, attr);
        assert!(
            !used.is_empty() || element == "participating-org",
            "{element}@{attr} unused"
        );
        for code in used {
            assert!(codes.contains(&code), "{element}@{attr}={code} is not in {list}");
        }
    }
    if !xmllint_present() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have xmllint (libxml2-utils)"
        );
        eprintln!(
            "NOTICE: xmllint not installed; IATI XSD validation skipped (apt-get install libxml2-utils)"
        );
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(standards.join("iati-2.03/iati-activities-schema.xsd"))
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "xmllint: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn post_csv(app: &TestApp, path: &str, who: &Session, body: Vec<u8>) -> reqwest::blocking::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(&who.access)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .unwrap()
}

fn activity_count(app: &TestApp, who: &Session) -> usize {
    let mut total = 0;
    let mut cursor = String::new();
    loop {
        let page: Value = app
            .get_as(&format!("/api/v1/activities?limit=200{cursor}"), &who.access)
            .json()
            .unwrap();
        total += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return total,
        }
    }
}

fn activities(app: &TestApp, who: &Session) -> Vec<Value> {
    let page: Value = app
        .get_as("/api/v1/activities?limit=200", &who.access)
        .json()
        .unwrap();
    page["items"].as_array().unwrap().clone()
}

#[test]
fn an_hdx_style_3w_with_attributes_imports_once_for_other_organisations_as_the_coordinator() {
    let app = seeded();
    let ocha = app.login("ocha", DEMO_PASSWORD);
    let before = activity_count(&app, &ocha);
    let res = post_csv(
        &app,
        "/api/v1/activities/import",
        &ocha,
        fixture("3w_hdx_attributes.csv"),
    );
    assert_eq!(res.status().as_u16(), 200);
    let summary: Value = res.json().unwrap();
    assert_eq!(summary["created"], 3, "{summary}");
    let all = activities(&app, &ocha);
    assert_eq!(all.len(), before + 3);
    let orgs: Value = app
        .get_as("/api/v1/organizations?limit=200", &ocha.access)
        .json()
        .unwrap();
    let org_id = |code: &str| {
        orgs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["code"] == code)
            .unwrap()["id"]
            .clone()
    };
    let pumps = all
        .iter()
        .find(|a| a["title"] == "Hand pumps for Kalma schools")
        .unwrap();
    assert_eq!(
        pumps["organization_id"],
        org_id("UNICEF"),
        "matched by acronym, not OCHA's"
    );
    assert_eq!(pumps["sector_code"], "WSH", "the cluster matched by name");
    let legal = all.iter().find(|a| a["title"] == "Legal aid desks").unwrap();
    assert_eq!(legal["organization_id"], org_id("NRC"));
    assert_eq!(legal["sector_code"], "PRO");

    // The same file again: nothing new.
    let again: Value = post_csv(
        &app,
        "/api/v1/activities/import",
        &ocha,
        fixture("3w_hdx_attributes.csv"),
    )
    .json()
    .unwrap();
    assert_eq!(
        (again["created"].as_u64(), again["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{again}"
    );
    assert_eq!(activity_count(&app, &ocha), before + 3);

    // A consultee of another kind of organisation imports only its own rows.
    let unicef = app.login("wash.unicef", DEMO_PASSWORD);
    let problem = crate::support::assert_problem(
        post_csv(
            &app,
            "/api/v1/activities/import",
            &unicef,
            fixture("3w_hdx_attributes.csv"),
        ),
        422,
        "validation",
    );
    let text = problem.to_string();
    assert!(
        text.contains("line 5") && text.contains("only your own"),
        "{problem}"
    );

    // An unknown organisation is reported by line, never created.
    let unknown = "#org+acronym,#sector,#adm1+code,#adm2+code,#date+start,#activity\n\
                   ZZNGO,WSH,XY01,XY0101,2026-01-01,Wells\n";
    let problem = crate::support::assert_problem(
        post_csv(
            &app,
            "/api/v1/activities/import",
            &ocha,
            unknown.as_bytes().to_vec(),
        ),
        422,
        "validation",
    );
    assert_eq!(problem["errors"][0]["field"], "line 2");
    assert!(problem.to_string().contains("not created"), "{problem}");
    let after: Value = app
        .get_as("/api/v1/organizations?limit=200", &ocha.access)
        .json()
        .unwrap();
    assert!(!after.to_string().contains("ZZNGO"));
}

#[test]
fn a_semicolon_separated_latin1_3w_imports_with_its_accents() {
    let app = seeded();
    let ocha = app.login("ocha", DEMO_PASSWORD);
    let res = post_csv(
        &app,
        "/api/v1/activities/import",
        &ocha,
        fixture("3w_semicolon_latin1.csv"),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["created"], 2);
    let all = activities(&app, &ocha);
    let mediation = all
        .iter()
        .find(|a| a["title"] == "Médiation communautaire à Gereida")
        .unwrap_or_else(|| panic!("accents lost: {all:?}"));
    assert_eq!(mediation["lat"], 10.95, "decimal comma read");
    assert!(
        all.iter()
            .any(|a| a["title"] == "Réhabilitation des latrines – écoles")
    );
    let again: Value = post_csv(
        &app,
        "/api/v1/activities/import",
        &ocha,
        fixture("3w_semicolon_latin1.csv"),
    )
    .json()
    .unwrap();
    assert_eq!(again["unchanged"], 2, "content key finds the rows again: {again}");
}

#[test]
fn a_cod_gazetteer_with_an_hxl_row_french_columns_and_adm3_imports() {
    let app = seeded();
    let qip = app.login("qip.officer", DEMO_PASSWORD);
    let res = post_csv(
        &app,
        "/api/v1/areas/import",
        &qip,
        fixture("cod_gazetteer_fr_adm3.csv"),
    );
    assert_eq!(res.status().as_u16(), 200, "{:?}", res.text());
    let summary: Value = res.json().unwrap();
    assert_eq!(
        (
            summary["adm1_areas"].as_u64(),
            summary["adm2_areas"].as_u64(),
            summary["adm3_areas"].as_u64()
        ),
        (Some(1), Some(2), Some(3)),
        "{summary}"
    );
    assert_eq!(summary["rows"], 3);
    let adm3: Value = app.get_as("/api/v1/areas?level=3", &qip.access).json().unwrap();
    let names: Vec<&str> = adm3["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Garsila (démo)", "Deleig (démo)", "Bindisi (démo)"]);
    assert_eq!(adm3["items"][0]["parent_pcode"], "XY0301");
    assert_eq!(adm3["items"][0]["lat"], 12.37);
    let adm2: Value = app.get_as("/api/v1/areas?adm1=XY03", &qip.access).json().unwrap();
    assert_eq!(adm2["items"][0]["name"], "Wadi Saleh (démo)");
    // The same file in Windows-1252 with semicolons reads the same.
    let text = String::from_utf8(fixture("cod_gazetteer_fr_adm3.csv"))
        .unwrap()
        .replace(',', ";");
    let (latin, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
    let res = post_csv(&app, "/api/v1/areas/import", &qip, latin.into_owned());
    let summary: Value = res.json().unwrap();
    assert_eq!(
        (summary["updated"].as_u64(), summary["encoding"].as_str()),
        (Some(6), Some("windows-1252")),
        "{summary}"
    );
    let adm3: Value = app.get_as("/api/v1/areas?level=3", &qip.access).json().unwrap();
    assert_eq!(adm3["items"][0]["name"], "Garsila (démo)");
}

/// The data lines of a CSV export (after the header and the HXL row), parsed.
fn csv_rows(text: &str) -> (Vec<String>, Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .from_reader(text.as_bytes());
    let mut all: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    let rest = all.split_off(2);
    (all[0].clone(), all[1].clone(), rest)
}

#[test]
fn the_3w_export_reimports_without_duplicates_and_neutralises_formulas() {
    let app = seeded();
    let unicef = app.login("wash.unicef", DEMO_PASSWORD);
    let res = app.post_json(
        "/api/v1/activities",
        Some(&unicef.access),
        &json!({"title": "=HYPERLINK(\"http://evil.invalid\",\"click\")", "sector_code": "WSH",
                "adm1_pcode": "XY01", "adm2_pcode": "XY0102", "start_date": "2026-10-01"}),
    );
    assert_eq!(res.status().as_u16(), 201, "{:?}", res.text());
    let ocha = app.login("ocha", DEMO_PASSWORD);
    post_csv(
        &app,
        "/api/v1/activities/import",
        &ocha,
        fixture("3w_hdx_attributes.csv"),
    );
    let before = activity_count(&app, &ocha);

    let (status, ctype, text) = get_text(&app, "/api/v1/activities/exports/3w.csv", &ocha.access);
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let (header, tags, rows) = csv_rows(&text);
    assert_eq!(header[0], "Activity code");
    assert!(tags.iter().all(|t| t.starts_with('#')), "{tags:?}");
    assert_eq!(rows.len(), before);
    let evil = rows.iter().find(|r| r[2].contains("HYPERLINK")).unwrap();
    assert!(evil[2].starts_with("'="), "neutralised: {:?}", evil[2]);
    assert!(
        rows.iter().any(|r| r[0] == "HDX-UNICEF-001"),
        "the file's own code is kept"
    );

    let res = post_csv(&app, "/api/v1/activities/import", &ocha, text.into_bytes());
    assert_eq!(res.status().as_u16(), 200);
    let summary: Value = res.json().unwrap();
    assert_eq!(summary["created"], 0, "{summary}");
    assert_eq!(activity_count(&app, &ocha), before, "no duplicates");
}

fn minor(amount: &Value) -> i64 {
    let text = amount.as_str().unwrap_or_else(|| panic!("{amount}"));
    let negative = text.starts_with('-');
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let v: i64 = digits.parse().unwrap();
    if negative { -v } else { v }
}

fn line<'a>(statement: &'a Value, kind: &str) -> Option<&'a Value> {
    statement["movements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == kind)
}

fn effect(statement: &Value, kind: &str, total: &str) -> i64 {
    line(statement, kind).map_or(0, |m| minor(&m["effect"][total]))
}

#[test]
fn the_reports_totals_equal_the_statements_for_the_same_period() {
    let app = seeded();
    let finance = app.login("finance", DEMO_PASSWORD);
    let implementing = proposal_titled(&app, &finance, "Classroom repairs in Tawila");
    refund(&app, &finance, implementing["id"].as_str().unwrap(), "250.00");
    let pool = pool_id(&app, &finance);
    // The JSON API says the same as the IATI file: a refund is a (negative) disbursement, never 7.
    let refunds: Value = app
        .get_as(
            &format!("/api/v1/pools/{pool}/transactions?kind=refund"),
            &finance.access,
        )
        .json()
        .unwrap();
    assert_eq!(refunds["items"][0]["iati_transaction_type"], 3, "{refunds}");
    let today = chrono::Utc::now().date_naive();
    for (from, to) in [
        (None, None),
        (Some(today), Some(today)),
        (Some(today.pred_opt().unwrap()), Some(today.pred_opt().unwrap())),
    ] {
        let q = match (from, to) {
            (Some(f), Some(t)) => format!("?from={f}&to={t}"),
            _ => String::new(),
        };
        let report: Value = app
            .get_as(&format!("/api/v1/pools/{pool}/report{q}"), &finance.access)
            .json()
            .unwrap();
        let statement: Value = app
            .get_as(&format!("/api/v1/pools/{pool}/statement{q}"), &finance.access)
            .json()
            .unwrap();
        let t = &report["totals"];
        assert_eq!(
            minor(&t["contributed"]),
            effect(&statement, "contribution", "contributed"),
            "{q}"
        );
        assert_eq!(
            minor(&t["committed"]),
            effect(&statement, "commitment", "committed"),
            "{q}"
        );
        assert_eq!(
            minor(&t["released"]),
            -effect(&statement, "release", "committed"),
            "{q}"
        );
        assert_eq!(
            minor(&t["disbursed"]),
            effect(&statement, "disbursement", "disbursed"),
            "{q}"
        );
        assert_eq!(
            minor(&t["refunded"]),
            -effect(&statement, "refund", "disbursed"),
            "{q}"
        );
        // Net movement of each total, both ways.
        let net = |k: &str| minor(&statement["closing"][k]) - minor(&statement["opening"][k]);
        assert_eq!(
            minor(&t["committed"]) - minor(&t["released"]) - minor(&t["disbursed"]),
            net("committed"),
            "{q}"
        );
        assert_eq!(
            minor(&t["disbursed"]) - minor(&t["refunded"]),
            net("disbursed"),
            "{q}"
        );
        // Every breakdown adds up to the totals.
        for dim in ["by_state", "by_sector", "by_adm1", "by_organization"] {
            for field in ["committed", "released", "disbursed", "refunded"] {
                let sum: i64 = report[dim]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| minor(&l[field]))
                    .sum();
                assert_eq!(sum, minor(&t[field]), "{dim}.{field} {q}");
            }
            let proposals: i64 = report[dim]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["proposals"].as_i64().unwrap())
                .sum();
            assert_eq!(proposals, report["proposals"].as_i64().unwrap(), "{dim} {q}");
        }
        if from.is_none() || from == Some(today) {
            assert_eq!(t["refunded"], "250.00");
            assert_eq!(t["contributed"], "250000.00");
            assert_eq!(report["proposals"], 11, "every submitted proposal");
            assert_eq!(
                report["beneficiaries_reached"]["women"], 200,
                "two accepted completions"
            );
            assert!(report["flags_by_category"]["duplication"].as_i64().unwrap() >= 1);
            assert!(
                !report.to_string().contains("UNICEF drills here"),
                "no flag texts"
            );
            assert!(!report["approval_turnaround"].as_array().unwrap().is_empty());
        } else {
            assert_eq!(t["committed"], "0.00");
            assert_eq!(report["proposals"], 0);
        }
    }
    // HXL CSV, by Accept header or format=csv.
    let res = app
        .client
        .get(app.url(&format!("/api/v1/pools/{pool}/report")))
        .bearer_auth(&finance.access)
        .header("Accept", "text/csv")
        .send()
        .unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = res.text().unwrap();
    let (_, tags, rows) = csv_rows(&text);
    assert_eq!(tags[0], "#meta+section");
    let totals = rows.iter().find(|r| r[0] == "totals" && r[1] == "pool").unwrap();
    assert_eq!(totals[8], "250.00", "refunded column");
    let (status, _, _) = get_text(
        &app,
        &format!("/api/v1/pools/{pool}/report?format=csv"),
        &finance.access,
    );
    assert_eq!(status, 200);
    crate::support::assert_problem(
        app.get_as(
            &format!("/api/v1/pools/{pool}/report?format=pdf"),
            &finance.access,
        ),
        422,
        "validation",
    );
    crate::support::assert_problem(
        app.get_as(
            &format!("/api/v1/pools/{pool}/report?from=2026-02-02&to=2026-01-01"),
            &finance.access,
        ),
        422,
        "validation",
    );
}

#[test]
fn the_proposals_export_carries_money_and_beneficiaries() {
    let app = seeded();
    let finance = app.login("finance", DEMO_PASSWORD);
    let implementing = proposal_titled(&app, &finance, "Classroom repairs in Tawila");
    refund(&app, &finance, implementing["id"].as_str().unwrap(), "250.00");
    let pool = pool_id(&app, &finance);
    let (status, _, text) = get_text(
        &app,
        &format!("/api/v1/pools/{pool}/exports/proposals.csv"),
        &finance.access,
    );
    assert_eq!(status, 200);
    let (header, tags, rows) = csv_rows(&text);
    assert_eq!(header.len(), 26);
    assert_eq!(tags[0], "#activity+code");
    assert!(tags.contains(&"#targeted+f+children".to_owned()));
    assert_eq!(rows.len(), 11, "every proposal but the draft");
    let col = |tag: &str| tags.iter().position(|t| t == tag).unwrap();
    let row = rows
        .iter()
        .find(|r| r[col("#activity+name")] == "Classroom repairs in Tawila")
        .unwrap();
    assert_eq!(
        row[col("#value+committed")],
        "10000.00",
        "commitments less releases"
    );
    assert_eq!(row[col("#value+disbursed")], "6000.00");
    assert_eq!(row[col("#value+refunded")], "250.00");
    assert_eq!(row[col("#adm2+name")], "Tawila (demo)");
    assert_eq!(row[col("#targeted+f+adults")], "120");
    let closed = rows
        .iter()
        .find(|r| r[col("#activity+name")] == "Youth centre paint and benches")
        .unwrap();
    assert_eq!(closed[col("#reached+m+children")], "170");
    // Only readers of the ledger get row-level money.
    let unit = app.login("cimic", DEMO_PASSWORD);
    crate::support::assert_problem(
        app.get_as(
            &format!("/api/v1/pools/{pool}/exports/proposals.csv"),
            &unit.access,
        ),
        403,
        "forbidden",
    );
}

#[test]
fn the_transactions_export_streams_many_rows_page_by_page() {
    let app = seeded();
    let finance = app.login("finance", DEMO_PASSWORD);
    let pool = pool_id(&app, &finance);
    let orgs: Value = app
        .get_as("/api/v1/organizations?limit=200", &finance.access)
        .json()
        .unwrap();
    let donor = orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == "DONOR-A")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let extra = 1_150;
    for i in 0..extra {
        let res = app
            .client
            .post(app.url(&format!("/api/v1/pools/{pool}/contributions")))
            .bearer_auth(&finance.access)
            .header("Idempotency-Key", format!("bulk-{i}"))
            .json(
                &json!({"contributor_organization_id": donor, "amount": "1.00", "currency": "USD",
                          "reference": if i == 0 { "=cmd|' /C calc'!A0" } else { "bulk" }}),
            )
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 201);
    }
    let res = app
        .client
        .get(app.url(&format!("/api/v1/pools/{pool}/exports/transactions.csv")))
        .bearer_auth(&finance.access)
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers().get("content-length").is_none(),
        "streamed (chunked), not buffered: {:?}",
        res.headers()
    );
    let text = res.text().unwrap();
    let (_, tags, rows) = csv_rows(&text);
    assert_eq!(tags[0], "#meta+id");
    let statement: Value = app
        .get_as(&format!("/api/v1/pools/{pool}/statement"), &finance.access)
        .json()
        .unwrap();
    let entries: u64 = statement["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(
        rows.len() as u64 * 2,
        entries,
        "every transaction once (two legs each)"
    );
    assert!(rows.len() > extra, "{}", rows.len());
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "no row twice across pages");
    let contributed: i64 = rows
        .iter()
        .filter(|r| r[2] == "contribution")
        .map(|r| minor(&Value::String(r[4].clone())))
        .sum();
    assert_eq!(contributed, minor(&statement["closing"]["contributed"]));
    assert!(
        rows.iter().any(|r| r[8] == "'=cmd|' /C calc'!A0"),
        "reference neutralised"
    );
    assert!(rows.iter().all(|r| r[3] != "7"));
}

#[test]
fn the_publisher_and_country_come_from_settings_and_identifiers_must_start_with_the_org_ref() {
    let app = seeded_with(|s| {
        s.exchange.iati_reporting_org_ref = "XM-OCHA-TEST".into();
        s.exchange.iati_activity_prefix = "XM-OCHA-TEST-QIPF-".into();
        s.exchange.iati_recipient_country = "SD".into();
    });
    let finance = app.login("finance", DEMO_PASSWORD);
    let pool = pool_id(&app, &finance);
    let (status, _, xml) = get_text(
        &app,
        &format!("/api/v1/pools/{pool}/exports/iati-activities.xml"),
        &finance.access,
    );
    assert_eq!(status, 200);
    assert!(xml.contains("<reporting-org ref=\"XM-OCHA-TEST\""), "{xml}");
    assert!(xml.contains("<iati-identifier>XM-OCHA-TEST-QIPF-QIP-"), "{xml}");
    assert_eq!(
        xml.matches("<recipient-country code=\"SD\" percentage=\"100\"/>")
            .count(),
        6
    );
    assert!(!xml.contains("<recipient-region"));

    let err = qip_pool::config::Settings::load_from(
        None,
        vec![(
            "QIP__EXCHANGE__IATI_ACTIVITY_PREFIX".to_owned(),
            "OTHER-".to_owned(),
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("iati_activity_prefix"), "{err}");
    // An unknown pool is a 404 problem, for the file and the exports alike.
    for path in [
        "/api/v1/pools/nope/exports/iati-activities.xml",
        "/api/v1/pools/nope/exports/proposals.csv",
        "/api/v1/pools/nope/exports/transactions.csv",
        "/api/v1/pools/nope/report",
    ] {
        crate::support::assert_problem(app.get_as(path, &finance.access), 404, "not-found");
    }
}
