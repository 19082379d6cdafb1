//! The stack's API server is a real kube-apiserver: it installs a CRD, serves it, and
//! rejects objects that break the CRD's OpenAPI schema or its CEL rules.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;
use tributary_tests::unique;

#[tokio::test]
async fn api_server_serves_a_crd_and_rejects_objects_that_break_its_schema() {
    let client = kube::Client::try_default().await.expect("kube client from KUBECONFIG");
    let plural = unique("widgets").replace('-', "");
    let group = "smoke.tributary.dev";
    let crd_name = format!("{plural}.{group}");
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural.trim_end_matches('s'), "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "required": ["size"],
                        "x-kubernetes-validations": [
                            {"rule": "self.minSize <= self.size", "message": "minSize must not exceed size"}
                        ],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "minSize": {"type": "integer", "default": 1}
                        }
                    }}
                }}
            }]
        }
    }))
    .unwrap();

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.expect("API server accepts the CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds.clone(), &crd_name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established within 30 s")
    .expect("watch the CRD");

    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", "Widget"), &plural);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let widget = |name: &str, spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": format!("{group}/v1"), "kind": "Widget",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap()
    };

    // The CRD is served only once discovery has caught up; retry the first create until then.
    let created = tributary_tests::wait_until("the new resource to be served", Duration::from_secs(30), || {
        let widgets = widgets.clone();
        let ok = widget("good", json!({"size": 3}));
        async move { widgets.create(&PostParams::default(), &ok).await.map_err(|e| e.to_string()) }
    })
    .await;
    assert_eq!(created.data["spec"]["size"], 3);
    let read = widgets.get("good").await.expect("read the object back");
    assert_eq!(read.data["spec"]["minSize"], 1, "the schema default was applied by the API server");

    let too_small = widgets.create(&PostParams::default(), &widget("too-small", json!({"size": 0}))).await;
    let err = too_small.expect_err("size 0 is below the schema minimum").to_string();
    assert!(err.contains("spec.size") && err.contains("greater than or equal to 1"), "unexpected error: {err}");

    let cel = widgets.create(&PostParams::default(), &widget("inverted", json!({"size": 2, "minSize": 5}))).await;
    let err = cel.expect_err("the CEL rule refuses minSize > size").to_string();
    assert!(err.contains("minSize must not exceed size"), "unexpected error: {err}");

    let names: Vec<String> = widgets
        .list(&Default::default())
        .await
        .expect("list widgets")
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect();
    assert_eq!(names, vec!["good".to_string()], "only the valid object was stored");

    crds.delete(&crd_name, &DeleteParams::default()).await.expect("delete the CRD");
}
