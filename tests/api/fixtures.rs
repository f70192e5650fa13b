//! A small mission for tests: organisations, a user per role, a gazetteer, a pool, and proposal builders.

use reqwest::Method;
use reqwest::blocking::Response;
use serde_json::{Value, json};

use crate::support::{Session, TestApp};

pub const GAZETTEER: &str = "ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN,LAT,LON\n\
XY01,North,XY0101,Kalma,12.10,24.90\n\
XY01,North,XY0102,Tawila,12.30,25.10\n\
XY02,South,XY0201,Nyala,11.05,24.88\n";

pub struct Mission {
    pub app: TestApp,
    pub _admin: Session,
    pub qip: Session,
    pub unit: Session,
    pub unit_org: String,
    pub other_unit: Session,
    pub consultee: Session,
    pub auditor: Session,
    pub pool_id: String,
}

impl Mission {
    pub fn new() -> Self {
        let (app, admin) = TestApp::with_admin();
        let office = app.create_org(&admin, "QIPSEC", "mission_office");
        let unit_org = app.create_org(&admin, "BANBAT", "military_unit");
        let other_org = app.create_org(&admin, "PAKENG", "military_unit");
        let agency = app.create_org(&admin, "UNICEF", "un_agency");
        let qip = app.user_with_hats(&admin, "qip", &office, &["qip_officer"]);
        let unit = app.user_with_hats(&admin, "cimic", &unit_org, &["submitter"]);
        let other_unit = app.user_with_hats(&admin, "sapper", &other_org, &["submitter"]);
        let consultee = app.user_with_hats(&admin, "wash", &agency, &["consultee"]);
        let auditor = app.user_with_hats(&admin, "oios", &office, &["auditor"]);
        let res = app
            .client
            .post(app.url("/api/v1/areas/import"))
            .bearer_auth(&qip.access)
            .header("content-type", "text/csv")
            .body(GAZETTEER)
            .send()
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "gazetteer");
        let res = app.post_json(
            "/api/v1/pools",
            Some(&qip.access),
            &json!({"code": "DFP", "name": "Darfur QIP pool", "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
        );
        assert_eq!(res.status().as_u16(), 201, "pool");
        let pool_id = res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
        Mission {
            app,
            _admin: admin,
            qip,
            unit,
            unit_org,
            other_unit,
            consultee,
            auditor,
            pool_id,
        }
    }

    /// A proposal body that passes every submission check.
    pub fn complete_content(&self, title: &str, amount: &str) -> Value {
        json!({
            "pool_id": self.pool_id,
            "title": title,
            "summary": "A borehole with a hand pump next to the school",
            "objectives": "Safe water for 600 pupils",
            "confidence_building_purpose": "Trust between the battalion and Kalma",
            "sector_code": "WSH",
            "location": {"adm1_pcode": "XY01", "adm2_pcode": "XY0101", "lat": 12.1, "lon": 24.9},
            "implementing_partner": {"kind": "local_authority", "name": "Kalma water board"},
            "beneficiaries": {"women": 40, "men": 35, "girls": 300, "boys": 280},
            "planned_start": "2027-01-10",
            "planned_end": "2027-04-10",
            "budget_lines": [{"description": "Drilling and pump", "category": "materials", "quantity": "1", "unit_cost": amount}],
            "requested_amount": amount,
            "handover": {"local_authority": "Kalma district council", "maintenance": "School water committee"},
            "local_ownership": "Endorsed by the council and the parents' association",
            "screening": {"civilian_actor_present": false, "unique_military_capability": "Drilling rig",
                          "time_limited_with_handover": true, "assistance_type": "indirect",
                          "humanitarian_access_risk": "Low: no escort, civilian contractor on site"}
        })
    }

    pub fn create(&self, who: &Session, body: &Value) -> Response {
        self.app.post_json("/api/v1/proposals", Some(&who.access), body)
    }

    /// Creates a complete draft as the unit and returns (id, version).
    pub fn draft(&self, title: &str, amount: &str) -> (String, i64) {
        let res = self.create(&self.unit, &self.complete_content(title, amount));
        assert_eq!(res.status().as_u16(), 201, "draft");
        let body: Value = res.json().unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["version"].as_i64().unwrap(),
        )
    }

    pub fn with_if_match(
        &self,
        method: Method,
        path: &str,
        who: &Session,
        version: i64,
        body: Option<&Value>,
    ) -> Response {
        let mut req = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&who.access)
            .header("If-Match", format!("\"{version}\""));
        if let Some(b) = body {
            req = req.json(b);
        }
        req.send().unwrap()
    }

    pub fn submit(&self, id: &str, version: i64) -> Response {
        self.with_if_match(
            Method::POST,
            &format!("/api/v1/proposals/{id}/submit"),
            &self.unit,
            version,
            None,
        )
    }

    /// A submitted proposal: (id, reference, version).
    pub fn submitted(&self, title: &str, amount: &str) -> (String, String, i64) {
        let (id, version) = self.draft(title, amount);
        let res = self.submit(&id, version);
        assert_eq!(res.status().as_u16(), 200, "submit");
        let body: Value = res.json().unwrap();
        (
            id,
            body["reference"].as_str().unwrap().to_owned(),
            body["version"].as_i64().unwrap(),
        )
    }
}
