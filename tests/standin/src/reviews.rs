//! The create-only review resources, answered from the request's user and
//! the RBAC data, never stored: `SelfSubjectReview`
//! (`authentication.k8s.io`), `SelfSubjectAccessReview` and
//! `SubjectAccessReview` (`authorization.k8s.io`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::auth::UserInfo;
use crate::rbac::{Attributes, RbacIndex};
use crate::schema::FieldError;
use crate::schema::field::{self, BadValue};
use crate::status::ApiError;

/// `SelfSubjectReview`: who the server takes the client for.
pub(crate) fn self_subject_review(user: &UserInfo, version: &str) -> Value {
    json!({
        "apiVersion": format!("authentication.k8s.io/{version}"),
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": crate::meta::now()},
        "status": {"userInfo": user.to_json()},
    })
}

/// The two access reviews the stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AccessReview {
    /// About the requesting user.
    SelfSubject,
    /// About the user in its spec.
    Subject,
}

impl AccessReview {
    fn kind(self) -> &'static str {
        match self {
            AccessReview::SelfSubject => "SelfSubjectAccessReview",
            AccessReview::Subject => "SubjectAccessReview",
        }
    }
}

fn text<'v>(value: &'v Value, field: &str) -> &'v str {
    value[field].as_str().unwrap_or_default()
}

/// The user a SubjectAccessReview asks about: exactly its spec's user,
/// groups, uid and extra (the server adds no groups).
fn spec_user(spec: &Value) -> UserInfo {
    let extra: BTreeMap<String, Vec<String>> = spec["extra"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, values)| {
            let values = values
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            (key.clone(), values)
        })
        .collect();
    UserInfo {
        name: text(spec, "user").to_owned(),
        uid: text(spec, "uid").to_owned(),
        groups: spec["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        extra,
    }
}

/// `ValidateSubjectAccessReviewSpec` / `ValidateSelfSubjectAccessReviewSpec`.
fn validate(review: AccessReview, spec: &Value) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let resource = !spec["resourceAttributes"].is_null();
    let non_resource = !spec["nonResourceAttributes"].is_null();
    if resource && non_resource {
        errors.push(field::invalid(
            "spec.nonResourceAttributes",
            BadValue::Json(&spec["nonResourceAttributes"]),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if !resource && !non_resource {
        errors.push(field::invalid(
            "spec.resourceAttributes",
            BadValue::Str("null"),
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if review == AccessReview::Subject
        && text(spec, "user").is_empty()
        && spec["groups"].as_array().is_none_or(Vec::is_empty)
    {
        errors.push(field::invalid(
            "spec.user",
            BadValue::Str(""),
            "at least one of user or group must be specified",
        ));
    }
    errors
}

/// Answers an access review from the RBAC data: the review with its
/// `status` (`allowed`, and the authorizer's `reason` when it gave one).
pub(crate) fn access_review(
    review: AccessReview,
    body: &Value,
    requestor: &UserInfo,
    rbac: &RbacIndex,
    version: &str,
) -> Result<Value, ApiError> {
    let spec = &body["spec"];
    let errors = validate(review, spec);
    if !errors.is_empty() {
        let kind = review.kind();
        return Err(ApiError::invalid_kind(
            &format!("{kind}.authorization.k8s.io"),
            kind,
            "authorization.k8s.io",
            "",
            &errors,
        ));
    }
    let user = match review {
        AccessReview::SelfSubject => requestor.clone(),
        AccessReview::Subject => spec_user(spec),
    };
    let attributes = if spec["resourceAttributes"].is_null() {
        let attributes = &spec["nonResourceAttributes"];
        Attributes::path(&user, text(attributes, "verb"), text(attributes, "path"))
    } else {
        let attributes = &spec["resourceAttributes"];
        Attributes::resource(
            &user,
            text(attributes, "verb"),
            text(attributes, "group"),
            text(attributes, "resource"),
            text(attributes, "subresource"),
            text(attributes, "namespace"),
            text(attributes, "name"),
        )
    };
    let decision = rbac.authorize(&attributes);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    let mut answer = body.clone();
    answer["apiVersion"] = json!(format!("authorization.k8s.io/{version}"));
    answer["kind"] = json!(review.kind());
    if answer["metadata"].is_null() {
        answer["metadata"] = json!({});
    }
    answer["status"] = status;
    Ok(answer)
}
