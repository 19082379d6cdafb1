//! An in-memory Kubernetes API for reconcile tests: a `kube::Client` whose requests are
//! answered from a map of objects keyed by their path, and recorded for assertions.
//!
//! What it implements is what the reconciles use: GET of an object or a collection, POST,
//! DELETE, and PATCH as JSON patch, merge patch, and server-side apply (a merge patch that
//! also removes the fields the same field manager applied last time and leaves out now, as
//! the API server does; no conflicts). Each write bumps `resourceVersion`; a new object gets
//! a `uid` and `generation` 1.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};

/// One request the API received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: Method,
    /// The path without the query.
    pub path: String,
    /// The content type of a PATCH (`apply-patch+yaml`, `merge-patch+json`, `json-patch+json`).
    pub patch_type: Option<String>,
    pub body: Value,
}

impl Recorded {
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Value>,
    /// The last server-side apply of each (path, field manager).
    applied: BTreeMap<(String, String), Value>,
    requests: Vec<Recorded>,
    version: u64,
}

/// The API's state, shared with the client it serves.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

/// Plural resource names that are collections (a GET on them lists).
const COLLECTIONS: [&str; 9] =
    ["namespaces", "secrets", "configmaps", "deployments", "pods", "events", "tenants", "topics", "cassandrasinks"];

impl FakeApi {
    pub fn client(&self) -> Client {
        let api = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(api.answer(request).await) }
        });
        Client::new(service, "default")
    }

    /// Stores `object` at `path` as if it had been created there.
    pub fn put(&self, path: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.version += 1;
        fill_new_metadata(&mut object, state.version);
        state.objects.insert(path.to_string(), object);
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.state.lock().unwrap().objects.get(path).cloned()
    }

    /// The stored object at `path` as `K`.
    pub fn object<K: serde::de::DeserializeOwned>(&self, path: &str) -> K {
        let value = self.get(path).unwrap_or_else(|| panic!("no object at {path}"));
        serde_json::from_value(value).unwrap_or_else(|e| panic!("object at {path}: {e}"))
    }

    /// Every stored object of the collection `plural` (of any namespace) as `K`.
    pub fn objects_of<K: serde::de::DeserializeOwned>(&self, plural: &str) -> Vec<K> {
        let state = self.state.lock().unwrap();
        let of_kind = |path: &str| path.rsplit('/').nth(1) == Some(plural);
        let objects = state.objects.iter().filter(|(path, _)| of_kind(path));
        objects.map(|(path, v)| serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{path}: {e}"))).collect()
    }

    /// Every request so far, and forgets them.
    pub fn take_requests(&self) -> Vec<Recorded> {
        std::mem::take(&mut self.state.lock().unwrap().requests)
    }

    /// The writes so far (events left out: they are published in the background), and
    /// forgets every request.
    pub fn take_writes(&self) -> Vec<Recorded> {
        self.take_requests().into_iter().filter(|r| r.is_write() && !r.path.contains("/events")).collect()
    }

    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let path = parts.uri.path().to_string();
        let patch_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.strip_prefix("application/").filter(|t| t.contains("patch")).map(str::to_string));
        let watch = parts.uri.query().is_some_and(|q| q.contains("watch=true"));
        let mut state = self.state.lock().unwrap();
        state.requests.push(Recorded {
            method: parts.method.clone(),
            path: path.clone(),
            patch_type: patch_type.clone(),
            body: body.clone(),
        });
        if watch {
            // No watch is served: the reconciles under test do not watch.
            return respond(StatusCode::METHOD_NOT_ALLOWED, status_body(405, "watch is not served"));
        }
        let (object_path, subresource) = match path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (path.clone(), false),
        };
        match parts.method {
            Method::GET => get(&state, &path, &object_path),
            Method::POST => {
                let name = body.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("generated").to_string();
                let key = format!("{path}/{name}");
                state.version += 1;
                let mut object = body;
                fill_new_metadata(&mut object, state.version);
                state.objects.insert(key, object.clone());
                respond(StatusCode::CREATED, object)
            }
            Method::DELETE => match state.objects.remove(&object_path) {
                Some(object) => respond(StatusCode::OK, object),
                None => not_found(&path),
            },
            Method::PATCH => {
                let manager = parts
                    .uri
                    .query()
                    .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("fieldManager=")))
                    .unwrap_or_default()
                    .to_string();
                let patch = Patch { path, object_path, subresource, patch_type, manager, body };
                patch.apply_to(&mut state)
            }
            _ => respond(StatusCode::METHOD_NOT_ALLOWED, status_body(405, "method not served")),
        }
    }
}

/// GET of one object, or of a collection (a list of the objects right under it).
fn get(state: &State, path: &str, object_path: &str) -> Response<Body> {
    match state.objects.get(object_path) {
        Some(object) => respond(StatusCode::OK, object.clone()),
        None if COLLECTIONS.contains(&last_segment(path)) => {
            let prefix = format!("{path}/");
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(k, _)| k.strip_prefix(&prefix).is_some_and(|rest| !rest.contains('/')))
                .map(|(_, v)| v.clone())
                .collect();
            let version = state.version.to_string();
            respond(StatusCode::OK, json!({"kind": "List", "metadata": {"resourceVersion": version}, "items": items}))
        }
        None => not_found(path),
    }
}

/// One PATCH request: merge, JSON or server-side apply, of an object or its status.
struct Patch {
    path: String,
    object_path: String,
    subresource: bool,
    patch_type: Option<String>,
    manager: String,
    body: Value,
}

impl Patch {
    fn apply_to(self, state: &mut State) -> Response<Body> {
        let Patch { path, object_path, subresource, patch_type, manager, body } = self;
        let existing = state.objects.get(&object_path).cloned();
        let apply = patch_type.as_deref() == Some("apply-patch+yaml");
        let mut object = match existing {
            Some(object) => object,
            None if apply && !subresource => Value::Object(Default::default()),
            None => return not_found(&path),
        };
        let created = object.get("metadata").is_none();
        if apply {
            let applied = if subresource { json!({"status": body.get("status").cloned()}) } else { body.clone() };
            if let Some(before) = state.applied.insert((path.clone(), manager.clone()), applied.clone()) {
                remove_dropped(&mut object, &before, &applied);
            }
        }
        let result = match patch_type.as_deref() {
            Some("json-patch+json") => serde_json::from_value::<json_patch::Patch>(body)
                .map_err(|e| e.to_string())
                .map(|p| as_kubernetes_reads(&object, p))
                .and_then(|p| json_patch::patch(&mut object, &p).map_err(|e| e.to_string())),
            _ if subresource => {
                json_patch::merge(&mut object, &json!({"status": body.get("status").cloned()}));
                Ok(())
            }
            _ => {
                json_patch::merge(&mut object, &body);
                Ok(())
            }
        };
        if let Err(e) = result {
            return respond(StatusCode::UNPROCESSABLE_ENTITY, status_body(422, &e));
        }
        state.version += 1;
        if created {
            fill_new_metadata(&mut object, state.version);
        } else {
            object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        }
        // Server-side apply names its field manager in managedFields, as the API server does.
        if apply && !subresource {
            let entries = object["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
            if !entries.iter().any(|e| e["manager"] == json!(manager)) {
                let mut entries = entries;
                entries.push(json!({"manager": manager, "operation": "Apply"}));
                object["metadata"]["managedFields"] = json!(entries);
            }
        }
        // The controller-manager counts a quota at once: its status holds what it enforces.
        if object_path.contains("/resourcequotas/") && !subresource {
            let hard = object.pointer("/spec/hard").cloned().unwrap_or(json!({}));
            let used: serde_json::Map<String, Value> =
                hard.as_object().into_iter().flatten().map(|(k, _)| (k.clone(), json!("0"))).collect();
            object["status"] = json!({"hard": hard, "used": used});
        }
        state.objects.insert(object_path, object.clone());
        respond(StatusCode::OK, object)
    }
}

fn fill_new_metadata(object: &mut Value, version: u64) {
    let metadata = object.as_object_mut().map(|o| o.entry("metadata").or_insert_with(|| json!({})));
    if let Some(Value::Object(metadata)) = metadata {
        metadata.entry("uid").or_insert_with(|| json!(format!("uid-{version}")));
        metadata.entry("generation").or_insert(json!(1));
        metadata.insert("resourceVersion".into(), json!(version.to_string()));
    }
}

/// The API server's JSON patch finds an absent member equal to null in a `test` (kube's own
/// finalizer patch relies on it); the json-patch crate finds the path invalid. Such tests
/// are dropped here, so the fake answers as the API server does.
fn as_kubernetes_reads(object: &Value, patch: json_patch::Patch) -> json_patch::Patch {
    use json_patch::PatchOperation::Test;
    let absent_null = |op: &json_patch::PatchOperation| matches!(op, Test(t) if t.value.is_null() && object.pointer(t.path.as_str()).is_none());
    json_patch::Patch(patch.0.into_iter().filter(|op| !absent_null(op)).collect())
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

fn status_body(code: u16, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code,
           "reason": if code == 404 { "NotFound" } else { "Invalid" }, "metadata": {}})
}

fn not_found(path: &str) -> Response<Body> {
    respond(StatusCode::NOT_FOUND, status_body(404, &format!("{path} not found")))
}

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(&body).expect("json")))
        .expect("response")
}

/// Removes from `object` the fields `before` set and `now` leaves out (server-side apply's
/// rule for one field manager).
fn remove_dropped(object: &mut Value, before: &Value, now: &Value) {
    let (Some(object), Some(before)) = (object.as_object_mut(), before.as_object()) else { return };
    for (key, old) in before {
        match now.get(key) {
            None => {
                object.remove(key);
            }
            Some(new) => {
                if let Some(child) = object.get_mut(key) {
                    remove_dropped(child, old, new);
                }
            }
        }
    }
}
