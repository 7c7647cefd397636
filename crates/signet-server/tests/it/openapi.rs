//! `/openapi.json` says what the server accepts: request fields that are
//! optional are not `required`, and fields that take any JSON value are not
//! documented as objects. Each claim is checked against the real
//! deserializer.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::routes::{harness, Harness};

/// The schema of component `name` in `/openapi.json`.
async fn component(h: &Harness, name: &str) -> Value {
    let doc = h
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    doc["components"]["schemas"][name].clone()
}

/// Whether `field` of `schema` is documented as optional and as any JSON
/// value (no `type` that would refuse a string, a number or an array).
fn optional_and_any(schema: &Value, field: &str) -> Result<(), String> {
    let required = schema["required"].as_array().cloned().unwrap_or_default();
    if required.contains(&json!(field)) {
        return Err(format!("{field} is documented as required: {schema}"));
    }
    let property = &schema["properties"][field];
    if property.is_null() {
        return Err(format!("{field} is not documented: {schema}"));
    }
    let types: Vec<Value> = match &property["type"] {
        Value::Null => Vec::new(),
        Value::Array(types) => types.clone(),
        one => vec![one.clone()],
    };
    if !types.is_empty() {
        return Err(format!(
            "{field} is documented as {types:?} only: {property}"
        ));
    }
    Ok(())
}

#[tokio::test]
async fn task_args_are_optional_and_any_json() {
    let h = harness().await;
    // What the server really takes: no args, or any JSON value.
    for args in [
        None,
        Some(json!([1, 2])),
        Some(json!("text")),
        Some(json!(7)),
        Some(json!({"a": 1})),
    ] {
        let mut body = json!({"queue": "openapi-args", "task": "any.args"});
        if let Some(args) = &args {
            body["args"] = args.clone();
        }
        let r = h
            .call(
                Method::POST,
                "/v1/tasks",
                Some(&h.publish),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "args {args:?}: {}", r.text);
    }
    let schema = component(&h, "EnqueueRequest").await;
    optional_and_any(&schema, "args").unwrap();
}

#[tokio::test]
async fn message_body_is_optional_and_any_json() {
    let h = harness().await;
    for body in [
        None,
        Some(json!("plain text")),
        Some(json!([1])),
        Some(json!({"a": 1})),
    ] {
        let mut message = json!({"url": "https://example.com/hook"});
        if let Some(body) = &body {
            message["body"] = body.clone();
        }
        let r = h
            .call(
                Method::POST,
                "/v1/messages",
                Some(&h.publish),
                Some(&message.to_string()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "body {body:?}: {}", r.text);
    }
    let schema = component(&h, "MessageRequest").await;
    optional_and_any(&schema, "body").unwrap();
}
