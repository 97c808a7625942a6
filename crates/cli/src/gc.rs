//! `steward gc approve`: lets exactly one blocked garbage-collection pass go ahead.

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::args::GcApproveArgs;
use crate::exit::{Exit, fail};
use crate::table::table;

/// `{operator}{path}`.
///
/// # Errors
/// The operator address is not a URL.
pub fn api_url(operator: &str, path: &str) -> anyhow::Result<reqwest::Url> {
    let mut url = reqwest::Url::parse(operator.trim_end_matches('/'))
        .with_context(|| format!("--operator {operator:?} is not a URL"))?;
    url.set_path(path);
    Ok(url)
}

/// The blocked pass as `GET /api/v1/gc` reports it (`{"leader", "blocked"}`), for
/// people: what would be deleted and the command that approves exactly that.
pub fn blocked_report(state: &Value) -> String {
    let Some(blocked) = state.get("blocked").filter(|b| !b.is_null()) else {
        let leader = state
            .get("leader")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        return if leader {
            "no garbage collection is blocked; nothing to approve\n".to_owned()
        } else {
            "this operator is not the leader: ask the leader (only it runs garbage collection)\n"
                .to_owned()
        };
    };
    let s = |v: &Value, f: &str| {
        v.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let n = |f: &str| blocked.get(f).and_then(Value::as_u64).unwrap_or(0);
    let rows: Vec<Vec<String>> = blocked
        .get("objects")
        .and_then(Value::as_array)
        .map(|objects| {
            objects
                .iter()
                .map(|o| vec![s(o, "owner"), s(o, "kind"), s(o, "name")])
                .collect()
        })
        .unwrap_or_default();
    let digest = s(blocked, "digest");
    let specs = blocked
        .get("specs")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    format!(
        "garbage collection is blocked: it would remove {specs} of {} specs ({} of {} owned \
         objects)\n\n{}\nto let exactly this pass go ahead:\n\n    steward gc approve --digest {digest}\n",
        n("owningSpecs"),
        n("count"),
        n("owned"),
        table(&["OWNER", "KIND", "NAME"], &rows)
    )
}

async fn unreachable<T>(result: Result<T, reqwest::Error>, operator: &str) -> anyhow::Result<T> {
    result.with_context(|| {
        format!(
            "cannot reach the operator at {operator} (is `steward run` running? --operator sets the address)"
        )
    })
}

/// Runs `steward gc approve`.
///
/// # Errors
/// Operator unreachable (exit 2); the operator refused the digest (exit 1).
pub async fn approve(args: &GcApproveArgs) -> anyhow::Result<Exit> {
    let client = reqwest::Client::new();
    let Some(digest) = &args.digest else {
        let url = api_url(&args.operator, "/api/v1/gc")?;
        let response = unreachable(client.get(url).send().await, &args.operator).await?;
        let state: Value = response
            .error_for_status()
            .context("the operator refused the request")?
            .json()
            .await
            .context("cannot decode the GC state")?;
        print!("{}", blocked_report(&state));
        return Ok(Exit::Ok);
    };
    let url = api_url(&args.operator, "/api/v1/gc/approve")?;
    let token = crate::api_token::from_env()?;
    let mut request = client.post(url).json(&json!({ "digest": digest }));
    if let Some(token) = &token {
        request = request.bearer_auth(token);
    }
    let response = unreachable(request.send().await, &args.operator).await?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        println!("approved: the garbage collection pass {digest} goes ahead");
        return Ok(Exit::Ok);
    }
    let reason = body
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_owned);
    let hint = if token.is_none() && status == reqwest::StatusCode::UNAUTHORIZED {
        format!(
            " (set {} or {} to the operator's API token)",
            crate::api_token::TOKEN_VAR,
            crate::api_token::TOKEN_FILE_VAR
        )
    } else {
        String::new()
    };
    let message = format!("the operator refused the approval (HTTP {status}): {reason}{hint}");
    if status.is_client_error() {
        return Err(fail(Exit::Invalid, anyhow::anyhow!(message)));
    }
    Err(anyhow::anyhow!(message))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_pass_lists_its_objects_and_the_approval() {
        let state = json!({"leader": true, "blocked": {"digest": "abc", "count": 2, "owned": 5,
            "specs": ["a/b"], "owningSpecs": 2,
            "objects": [{"owner": "a/b", "kind": "NomadJob", "name": "b"},
                        {"owner": "a/b", "kind": "VaultPolicy", "name": "steward-a-b"}]}});
        let text = blocked_report(&state);
        assert!(
            text.starts_with(
                "garbage collection is blocked: it would remove 1 of 2 specs (2 of 5 owned objects)\n"
            ),
            "{text}"
        );
        assert!(text.contains("a/b    VaultPolicy  steward-a-b\n"), "{text}");
        assert!(
            text.ends_with("steward gc approve --digest abc\n"),
            "{text}"
        );
    }

    #[test]
    fn nothing_blocked_or_not_leader_says_so() {
        assert!(
            blocked_report(&json!({"leader": true, "blocked": null})).starts_with("no garbage")
        );
        assert!(
            blocked_report(&json!({"leader": false, "blocked": null})).contains("not the leader")
        );
    }

    #[test]
    fn urls_replace_any_path() {
        assert_eq!(
            api_url("http://127.0.0.1:7070/x", "/api/v1/gc/approve")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:7070/api/v1/gc/approve"
        );
    }
}
