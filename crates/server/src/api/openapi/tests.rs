use super::errors::ROUTE_CODES;
use super::*;
use std::collections::BTreeSet;

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_ascii_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

/// The route table and the document name the same operations; with the
/// router test (`route_table.rs`) holding the router to the table, the
/// router, the table and the document cannot disagree.
#[test]
fn documents_exactly_the_route_table() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = listed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&listed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not documented: {missing:?}; documented but not routed: {extra:?}"
    );
}

#[test]
fn the_error_table_covers_the_route_table() {
    let table: BTreeSet<(&str, &str)> = ROUTE_CODES.iter().map(|r| (r.0, r.1)).collect();
    let listed: BTreeSet<(&str, &str)> = ROUTES.iter().map(|r| (r.0, r.1)).collect();
    assert_eq!(table, listed);
    assert_eq!(table.len(), ROUTE_CODES.len(), "a route listed twice");
    for (m, p, codes) in ROUTE_CODES {
        for c in *codes {
            assert!(!ErrorCode::LOCAL.contains(c), "{m} {p}: {c} is never sent");
        }
    }
}

#[test]
fn every_operation_is_complete() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let name = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            ids.insert(id.to_string()),
            "{name}: operationId {id:?} twice"
        );
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{name}: no summary"
        );
        assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{name}: tags");
        let public = ROUTES
            .iter()
            .any(|r| r.0 == method && r.1 == path && r.2 == Access::Public);
        assert_eq!(
            op["security"].as_array().unwrap().is_empty(),
            public,
            "{name}: security"
        );
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{name}: no success response"
        );
        for (status, r) in responses.iter().filter(|(s, _)| !s.starts_with('2')) {
            let codes = &r["content"]["application/json"]["schema"]["allOf"][1]["properties"]
                ["error"]["properties"]["code"]["enum"];
            let codes = codes
                .as_array()
                .unwrap_or_else(|| panic!("{name} {status}"));
            assert!(!codes.is_empty());
            for c in codes {
                let code = ErrorCode::parse(c.as_str().unwrap()).unwrap();
                assert_eq!(code.http_status().to_string(), *status, "{name}: {code}");
                assert!(r["description"].as_str().unwrap().contains(code.as_str()));
            }
        }
        if !public {
            assert!(responses.contains_key("401"), "{name}: no 401");
        }
    }
}

/// Every `$ref` names a schema the document holds, and no `allOf` left
/// from serde's `flatten` hides a component's fields.
#[test]
fn references_resolve_and_flattened_types_are_merged() {
    let doc = document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for (name, s) in schemas {
        assert!(s.get("allOf").is_none(), "{name} is still an allOf");
    }
    fn walk(v: &Value, schemas: &Map<String, Value>) {
        match v {
            Value::Object(o) => {
                if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                    let name = r.strip_prefix("#/components/schemas/").unwrap();
                    assert!(schemas.contains_key(name), "dangling {r}");
                }
                o.values().for_each(|v| walk(v, schemas));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, schemas)),
            _ => {}
        }
    }
    walk(&doc, schemas);
    let rule = &schemas["RuleView"];
    for field in ["rule_id", "state", "listen_port", "targets", "created_at"] {
        assert!(rule["properties"].get(field).is_some(), "RuleView.{field}");
    }
    let push = &schemas["PushRuleBody"];
    assert_eq!(push["additionalProperties"], json!(false));
    let required: Vec<&str> = push["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["client", "listen_port", "targets"] {
        assert!(required.contains(&field), "PushRuleBody requires {field}");
    }
}

#[test]
fn the_document_is_openapi_3_1_with_both_security_schemes() {
    let doc: Value = serde_json::from_str(json()).unwrap();
    assert_eq!(doc, document());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "portunus_session");
    assert_eq!(schemes["csrf"]["name"], "X-Portunus-CSRF");
    let push = &doc["paths"]["/v1/rules"]["post"];
    assert_eq!(
        push["security"],
        json!([{ "bearer": [] }, { "session": [], "csrf": [] }])
    );
    let codes = &push["responses"]["409"]["content"]["application/json"]["examples"];
    assert!(codes.get("client_not_connected").is_some());
    assert!(codes.get("port_in_use").is_some());
}

#[test]
fn unsigned_integers_say_so() {
    let text = json();
    assert!(!text.contains("u-int"), "utoipa's spelling leaked");
    let doc = document();
    let port = &doc["components"]["schemas"]["RuleSpec"]["properties"]["listen_port"];
    assert_eq!(port["format"], "uint32");
    let cap = &doc["components"]["schemas"]["RateLimit"]["properties"]["bandwidth_in_bps"];
    assert_eq!(
        (&cap["format"], &cap["maximum"]),
        (&json!("uint64"), &json!(u64::MAX))
    );
}
