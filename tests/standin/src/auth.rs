//! Authentication and impersonation, as kube-apiserver does them with
//! `--token-auth-file` and its impersonation filter
//! (`k8s.io/apiserver/pkg/endpoints/filters/impersonation`).
//!
//! A bearer token names a user with its groups; every authenticated user is
//! also in `system:authenticated`. A request without a token, or with a token
//! nobody registered, is answered 401 (as with `--anonymous-auth=false`; see
//! the README). `Impersonate-*` headers then switch the user, each switch
//! authorized by the RBAC verb `impersonate`.

use std::collections::{BTreeMap, HashMap};

use hyper::HeaderMap;
use serde_json::json;

use crate::rbac::{self, Attributes, RbacIndex};
use crate::status::ApiError;

/// The group every authenticated user is in.
pub(crate) const AUTHENTICATED: &str = "system:authenticated";
/// The group the privileged-group authorizer lets do anything.
pub const MASTERS: &str = "system:masters";
/// Every ServiceAccount's group, and the prefix of a namespace's one.
pub(crate) const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

const IMPERSONATE_USER: &str = "impersonate-user";
const IMPERSONATE_GROUP: &str = "impersonate-group";
const IMPERSONATE_UID: &str = "impersonate-uid";
const IMPERSONATE_EXTRA_PREFIX: &str = "impersonate-extra-";

/// Who a request is from, as `user.Info` holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// `user.Info` as the `userInfo` of reviews and admission requests show it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut info = json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = json!(self.uid);
        }
        if !self.extra.is_empty() {
            info["extra"] = json!(self.extra);
        }
        info
    }

    /// The user of ServiceAccount `namespace/name`, with the groups the
    /// ServiceAccount token authenticator gives it (no `system:authenticated`:
    /// the authenticator chain adds that).
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        UserInfo {
            name: format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"),
            groups: service_account_groups(namespace),
            ..UserInfo::default()
        }
    }
}

fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        SERVICE_ACCOUNTS.to_owned(),
        format!("{SERVICE_ACCOUNTS}:{namespace}"),
    ]
}

/// `serviceaccount.SplitUsername`: the namespace and name of a ServiceAccount
/// user name, if it is one (`system:serviceaccount:<namespace>:<name>` with a
/// valid namespace and name).
pub(crate) fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    let valid =
        !name.contains(':') && crate::meta::is_dns_label(namespace) && crate::meta::is_dns_subdomain(name);
    valid.then_some((namespace, name))
}

/// The users of the static token file.
#[derive(Debug, Default)]
pub(crate) struct Users {
    by_token: HashMap<String, UserInfo>,
    tokens: BTreeMap<String, String>,
}

impl Users {
    /// Registers `name` in `groups` (and `system:authenticated`) and answers
    /// its token; registering a name again replaces its groups and keeps
    /// its token.
    pub fn add(&mut self, name: &str, groups: &[String]) -> String {
        let token = self
            .tokens
            .get(name)
            .cloned()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let mut all_groups: Vec<String> = groups.to_vec();
        if !all_groups.iter().any(|group| group == AUTHENTICATED) {
            all_groups.push(AUTHENTICATED.to_owned());
        }
        let uid = self
            .by_token
            .get(&token)
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |user| user.uid.clone());
        self.by_token.insert(
            token.clone(),
            UserInfo {
                name: name.to_owned(),
                uid,
                groups: all_groups,
                extra: BTreeMap::new(),
            },
        );
        self.tokens.insert(name.to_owned(), token.clone());
        token
    }

    pub fn token(&self, name: &str) -> Option<&str> {
        self.tokens.get(name).map(String::as_str)
    }

    /// The user of the request's `Authorization: Bearer` token; 401 as the
    /// real server answers when there is none or nobody has it.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
        headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|token| !token.is_empty())
            .and_then(|token| self.by_token.get(token))
            .cloned()
            .ok_or_else(|| ApiError::new(401, "Unauthorized", "Unauthorized"))
    }
}

/// What one `Impersonate-*` header asks to become.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Request {
    ServiceAccount { namespace: String, name: String },
    User(String),
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl Request {
    /// The attributes the requestor must be allowed: verb `impersonate` on
    /// the kind of thing impersonated, named by what is impersonated.
    fn attributes<'a>(&self, requestor: &'a UserInfo) -> Attributes<'a> {
        let (group, resource, subresource, namespace, name) = match self {
            Request::ServiceAccount { namespace, name } => {
                ("", "serviceaccounts", "", namespace.as_str(), name)
            }
            Request::User(name) => ("", "users", "", "", name),
            Request::Group(name) => ("", "groups", "", "", name),
            Request::Extra { key, value } => ("authentication.k8s.io", "userextras", key.as_str(), "", value),
            Request::Uid(uid) => ("authentication.k8s.io", "uids", "", "", uid),
        };
        Attributes::resource(
            requestor,
            "impersonate",
            group,
            resource,
            subresource,
            namespace,
            name,
        )
    }

    /// Go's `%v` of the `ObjectReference` the server builds for it.
    fn go_reference(&self) -> String {
        let (kind, namespace, name, api_version, field_path) = match self {
            Request::ServiceAccount { namespace, name } => {
                ("ServiceAccount", namespace.as_str(), name.as_str(), "", "")
            }
            Request::User(name) => ("User", "", name.as_str(), "", ""),
            Request::Group(name) => ("Group", "", name.as_str(), "", ""),
            Request::Extra { key, value } => (
                "UserExtra",
                "",
                value.as_str(),
                "authentication.k8s.io/v1",
                key.as_str(),
            ),
            Request::Uid(uid) => ("UID", "", uid.as_str(), "authentication.k8s.io/v1", ""),
        };
        format!("{{{kind} {namespace} {name}  {api_version}  {field_path}}}")
    }
}

/// `url.PathUnescape`: `%XX` sequences decoded; the key is kept as it is
/// when one is malformed, as the server keeps it.
fn path_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes
                .get(index + 1..index + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            match hex {
                Some(byte) => {
                    decoded.push(byte);
                    index += 3;
                    continue;
                }
                None => return text.to_owned(),
            }
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8(decoded).unwrap_or_else(|_| text.to_owned())
}

fn header_values<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
}

/// `buildImpersonationRequests`: what the headers ask for, in the order the
/// server authorizes them (user, groups, extras by key, uid).
fn impersonation_requests(headers: &HeaderMap) -> Result<Vec<Request>, ApiError> {
    let mut requests = Vec::new();
    let user = header_values(headers, IMPERSONATE_USER)
        .next()
        .unwrap_or_default();
    let has_user = !user.is_empty();
    if has_user {
        requests.push(match split_service_account(user) {
            Some((namespace, name)) => Request::ServiceAccount {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
            None => Request::User(user.to_owned()),
        });
    }
    let groups: Vec<&str> = header_values(headers, IMPERSONATE_GROUP).collect();
    requests.extend(groups.iter().map(|group| Request::Group((*group).to_owned())));
    let mut extras: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix(IMPERSONATE_EXTRA_PREFIX)
            && let Ok(value) = value.to_str()
        {
            extras
                .entry(path_unescape(key))
                .or_default()
                .push(value.to_owned());
        }
    }
    let has_extra = !extras.is_empty();
    for (key, values) in extras {
        requests.extend(values.into_iter().map(|value| Request::Extra {
            key: key.clone(),
            value,
        }));
    }
    let uid = header_values(headers, IMPERSONATE_UID).next().unwrap_or_default();
    let has_uid = !uid.is_empty();
    if has_uid {
        requests.push(Request::Uid(uid.to_owned()));
    }
    if (!groups.is_empty() || has_extra || has_uid) && !has_user {
        let listed: Vec<String> = requests.iter().map(Request::go_reference).collect();
        return Err(ApiError::bad_request(format!(
            "requested [{}] without impersonating a user",
            listed.join(" ")
        )));
    }
    Ok(requests)
}

/// The user a request acts as: `requestor` itself, or whom its
/// `Impersonate-*` headers name if RBAC allows `requestor` to impersonate
/// each of them (403 with the server's message for the first that is not).
pub(crate) fn impersonate(
    requestor: UserInfo,
    headers: &HeaderMap,
    rbac: &RbacIndex,
) -> Result<UserInfo, ApiError> {
    let requests = impersonation_requests(headers)?;
    if requests.is_empty() {
        return Ok(requestor);
    }
    let groups_specified = requests
        .iter()
        .any(|request| matches!(request, Request::Group(_)));
    let mut user = UserInfo::default();
    for request in &requests {
        let attributes = request.attributes(&requestor);
        let decision = rbac.authorize(&attributes);
        if !decision.allowed {
            return Err(rbac::forbidden(&attributes, &decision.reason));
        }
        match request {
            Request::ServiceAccount { namespace, name } => {
                user.name = format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}");
                if !groups_specified {
                    user.groups = service_account_groups(namespace);
                }
            }
            Request::User(name) => user.name.clone_from(name),
            Request::Group(group) => user.groups.push(group.clone()),
            Request::Extra { key, value } => user.extra.entry(key.clone()).or_default().push(value.clone()),
            Request::Uid(uid) => user.uid.clone_from(uid),
        }
    }
    if user.name == "system:anonymous" {
        if !user.groups.iter().any(|group| group == "system:unauthenticated") {
            user.groups.push("system:unauthenticated".to_owned());
        }
    } else if !user
        .groups
        .iter()
        .any(|group| group == AUTHENTICATED || group == "system:unauthenticated")
    {
        user.groups.push(AUTHENTICATED.to_owned());
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        headers
    }

    #[test]
    fn service_account_names_split_like_the_server() {
        assert_eq!(
            split_service_account("system:serviceaccount:shop:hoist"),
            Some(("shop", "hoist"))
        );
        assert_eq!(split_service_account("system:serviceaccount:shop"), None);
        assert_eq!(split_service_account("system:serviceaccount:Shop:hoist"), None);
        assert_eq!(split_service_account("system:serviceaccount:a:b:c"), None);
        assert_eq!(split_service_account("alice"), None);
    }

    #[test]
    fn groups_without_a_user_are_a_bad_request_naming_what_was_asked() {
        let error = impersonation_requests(&headers(&[("Impersonate-Group", "staff")])).expect_err("refused");
        assert_eq!((error.code, error.reason.as_str()), (400, "BadRequest"));
        assert_eq!(
            error.message,
            "requested [{Group  staff    }] without impersonating a user"
        );
    }

    #[test]
    fn extra_keys_are_lower_cased_and_unescaped() {
        let requests = impersonation_requests(&headers(&[
            ("Impersonate-User", "alice"),
            ("Impersonate-Extra-Acme.com%2Fproject", "a"),
            ("Impersonate-Uid", "42"),
        ]))
        .expect("requests");
        assert_eq!(
            requests,
            [
                Request::User("alice".to_owned()),
                Request::Extra {
                    key: "acme.com/project".to_owned(),
                    value: "a".to_owned()
                },
                Request::Uid("42".to_owned()),
            ]
        );
    }

    #[test]
    fn tokens_name_their_users_and_unknown_ones_are_unauthorized() {
        let mut users = Users::default();
        let token = users.add("alice", &["staff".to_owned()]);
        let bearer = format!("Bearer {token}");
        let alice = users
            .authenticate(&headers(&[("Authorization", bearer.as_str())]))
            .expect("alice");
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, ["staff", AUTHENTICATED]);
        assert_eq!(users.add("alice", &[]), token, "a user keeps its token");
        for sent in [
            vec![],
            vec![("Authorization", "Bearer nope")],
            vec![("Authorization", "Basic x")],
        ] {
            let error = users.authenticate(&headers(&sent)).expect_err("refused");
            assert_eq!(
                (error.code, error.reason.as_str(), error.message.as_str()),
                (401, "Unauthorized", "Unauthorized")
            );
        }
    }
}
