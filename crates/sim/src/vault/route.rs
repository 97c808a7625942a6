//! Which endpoint a logical path is, and what each endpoint does per operation.

use super::api::{Op, Outcome, VErr};
use super::{Cx, Inner, jwt, policy, sys, token};

/// The endpoint a logical path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    PoliciesAclList,
    PoliciesAcl(String),
    PolicyList,
    Policy(String),
    AuthTable,
    AuthMount(String),
    AuthTune(String),
    /// `sys/capabilities-self` (`None`) or `sys/capabilities` (token in the body).
    Capabilities {
        own: bool,
    },
    TokenLookupSelf,
    TokenLookup(Option<String>),
    TokenCreate {
        orphan: bool,
    },
    TokenRevokeSelf,
    /// `auth/token/revoke` (token in the body).
    TokenRevoke,
    /// `auth/token/revoke-accessor` (accessor in the body).
    TokenRevokeAccessor,
    TokenRenewSelf,
    JwtRoleList(String),
    JwtRole(String, String),
    JwtConfig(String),
    JwtLogin(String),
    /// Inside a mounted backend but no path of it matches.
    Unsupported(String),
    /// No mount serves the path.
    NoHandler(String),
}

impl Route {
    pub(super) fn resolve(inner: &Inner, path: &str) -> Route {
        if let Some(rest) = path.strip_prefix("sys/") {
            return match rest {
                "policies/acl" | "policies/acl/" => Route::PoliciesAclList,
                "policy" | "policy/" => Route::PolicyList,
                "auth" | "auth/" => Route::AuthTable,
                "capabilities-self" => Route::Capabilities { own: true },
                "capabilities" => Route::Capabilities { own: false },
                _ => {
                    if let Some(name) = rest.strip_prefix("policies/acl/") {
                        Route::PoliciesAcl(name.to_string())
                    } else if let Some(name) = rest.strip_prefix("policy/") {
                        Route::Policy(name.to_string())
                    } else if let Some(mount) = rest.strip_prefix("auth/") {
                        match mount.strip_suffix("/tune") {
                            Some(m) if !m.is_empty() => Route::AuthTune(m.to_string()),
                            _ => Route::AuthMount(mount.to_string()),
                        }
                    } else {
                        Route::Unsupported("system".into())
                    }
                }
            };
        }
        let Some(rest) = path.strip_prefix("auth/") else {
            return Route::NoHandler(path.to_string());
        };
        let with_slash = if rest.ends_with('/') {
            rest.to_string()
        } else {
            format!("{rest}/")
        };
        let Some(mount) = inner
            .mounts
            .keys()
            .filter(|m| with_slash.starts_with(m.as_str()))
            .max_by_key(|m| m.len())
        else {
            return Route::NoHandler(path.to_string());
        };
        let sub = rest.get(mount.len()..).unwrap_or("");
        let kind = inner
            .mounts
            .get(mount)
            .map(|m| m.kind.clone())
            .unwrap_or_default();
        match kind.as_str() {
            "token" => match sub {
                "lookup-self" => Route::TokenLookupSelf,
                "lookup" => Route::TokenLookup(None),
                "create" => Route::TokenCreate { orphan: false },
                "create-orphan" => Route::TokenCreate { orphan: true },
                "revoke-self" => Route::TokenRevokeSelf,
                "revoke" => Route::TokenRevoke,
                "revoke-accessor" => Route::TokenRevokeAccessor,
                "renew-self" => Route::TokenRenewSelf,
                _ => match sub.strip_prefix("lookup/") {
                    Some(t) if !t.is_empty() => Route::TokenLookup(Some(t.to_string())),
                    _ => Route::Unsupported("token".into()),
                },
            },
            "jwt" | "oidc" => match sub {
                "role" | "role/" => Route::JwtRoleList(mount.clone()),
                "config" => Route::JwtConfig(mount.clone()),
                "login" => Route::JwtLogin(mount.clone()),
                _ => match sub.strip_prefix("role/") {
                    Some(name) if jwt::valid_role_name(name) => {
                        Route::JwtRole(mount.clone(), name.to_lowercase())
                    }
                    _ => Route::Unsupported(kind),
                },
            },
            _ => Route::Unsupported(kind),
        }
    }

    pub(super) fn mount_type(&self, inner: &Inner) -> String {
        match self {
            Route::PoliciesAclList
            | Route::PoliciesAcl(_)
            | Route::PolicyList
            | Route::Policy(_)
            | Route::AuthTable
            | Route::AuthMount(_)
            | Route::AuthTune(_)
            | Route::Capabilities { .. } => "system".into(),
            Route::TokenLookupSelf
            | Route::TokenLookup(_)
            | Route::TokenCreate { .. }
            | Route::TokenRevokeSelf
            | Route::TokenRevoke
            | Route::TokenRevokeAccessor
            | Route::TokenRenewSelf => "token".into(),
            Route::JwtRoleList(m)
            | Route::JwtRole(m, _)
            | Route::JwtConfig(m)
            | Route::JwtLogin(m) => inner
                .mounts
                .get(m)
                .map(|m| m.kind.clone())
                .unwrap_or_default(),
            Route::Unsupported(kind) => kind.clone(),
            Route::NoHandler(_) => String::new(),
        }
    }

    /// `Some(exists)` for paths with an existence check (writes to them are `create`
    /// when the object is missing, `update` otherwise).
    pub(super) fn existence(&self, inner: &Inner) -> Option<bool> {
        match self {
            Route::JwtRole(mount, name) => Some(
                inner
                    .jwt
                    .get(mount)
                    .is_some_and(|b| b.roles.contains_key(name)),
            ),
            _ => None,
        }
    }

    /// Root-protected paths need `sudo` besides the operation's capability.
    pub(super) fn sudo_required(&self) -> bool {
        matches!(self, Route::AuthMount(_) | Route::AuthTune(_))
    }

    pub(super) fn execute(&self, cx: &mut Cx<'_>, op: Op) -> Outcome {
        let unsupported = || Err(VErr::unsupported_operation());
        match (self, op) {
            (Route::PoliciesAclList, Op::List) => sys::policy_list(cx, false),
            (Route::PolicyList, Op::List | Op::Read) => sys::policy_list(cx, true),
            (Route::PoliciesAcl(name), Op::Read) => sys::policy_read(cx, name, false),
            (Route::Policy(name), Op::Read) => sys::policy_read(cx, name, true),
            (Route::PoliciesAcl(name), Op::Update | Op::Create) => {
                sys::policy_write(cx, name, false)
            }
            (Route::Policy(name), Op::Update | Op::Create) => sys::policy_write(cx, name, true),
            (Route::PoliciesAcl(name) | Route::Policy(name), Op::Delete) => {
                sys::policy_delete(cx, name)
            }
            (Route::AuthTable, Op::Read) => sys::auth_table(cx),
            (Route::AuthMount(path), Op::Read) => sys::auth_read(cx, path),
            (Route::AuthMount(path), Op::Update | Op::Create) => sys::auth_enable(cx, path),
            (Route::AuthMount(path), Op::Delete) => sys::auth_disable(cx, path),
            (Route::AuthTune(path), Op::Read) => sys::auth_tune_read(cx, path),
            (Route::AuthTune(path), Op::Update | Op::Create) => sys::auth_tune_write(cx, path),
            (Route::Capabilities { own }, Op::Update | Op::Create) => sys::capabilities(cx, *own),
            (Route::TokenLookupSelf, Op::Read | Op::Update) => token::lookup_self(cx),
            (Route::TokenLookup(t), Op::Read | Op::Update) => token::lookup(cx, t.as_deref()),
            (Route::TokenCreate { orphan }, Op::Update | Op::Create) => token::create(cx, *orphan),
            (Route::TokenRevokeSelf, Op::Update | Op::Create) => token::revoke_self(cx),
            (Route::TokenRevoke, Op::Update | Op::Create) => token::revoke(cx),
            (Route::TokenRevokeAccessor, Op::Update | Op::Create) => token::revoke_accessor(cx),
            (Route::TokenRenewSelf, Op::Update | Op::Create) => token::renew_self(cx),
            (Route::JwtRoleList(mount), Op::List) => jwt::role_list(cx, mount),
            (Route::JwtRole(mount, name), Op::Read) => jwt::role_read(cx, mount, name),
            (Route::JwtRole(mount, name), Op::Create | Op::Update) => {
                jwt::role_write(cx, mount, name, op)
            }
            (Route::JwtRole(mount, name), Op::Delete) => jwt::role_delete(cx, mount, name),
            (Route::JwtConfig(mount), Op::Read) => jwt::config_read(cx, mount),
            (Route::JwtConfig(mount), Op::Update | Op::Create) => jwt::config_write(cx, mount),
            (Route::Unsupported(_), _) => Err(VErr::unsupported_path()),
            (Route::NoHandler(path), _) => Err(VErr::code(
                404,
                format!(
                    "no handler for route {}. route entry not found.",
                    policy::go_quote(path)
                ),
            )),
            _ => unsupported(),
        }
    }
}
