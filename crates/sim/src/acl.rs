//! Reading the caller's token the way each product does (reference §1.2).

use crate::Product;
use http::HeaderMap;
use std::collections::HashMap;

/// The token a request carries, if any.
///
/// Consul: `X-Consul-Token`, then `Authorization: Bearer`, then legacy `?token=`.
/// Nomad: `X-Nomad-Token`, then `Authorization: Bearer` (scheme case-insensitive).
/// Vault: `X-Vault-Token`, then `Authorization: Bearer`.
pub fn request_token(
    product: Product,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<String> {
    let header = match product {
        Product::Consul => "x-consul-token",
        Product::Nomad => "x-nomad-token",
        Product::Vault => "x-vault-token",
    };
    if let Some(v) = headers.get(header).and_then(|v| v.to_str().ok())
        && !v.is_empty()
    {
        return Some(v.to_string());
    }
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let mut parts = v.split_whitespace();
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next())
            && scheme.eq_ignore_ascii_case("bearer")
        {
            return Some(token.to_string());
        }
    }
    if product == Product::Consul
        && let Some(t) = query.get("token").filter(|t| !t.is_empty())
    {
        return Some(t.clone());
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_come_from_the_product_header_then_bearer() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(
            request_token(Product::Nomad, &h, &HashMap::new()).as_deref(),
            Some("abc")
        );
        h.insert("x-nomad-token", "xyz".parse().unwrap());
        assert_eq!(
            request_token(Product::Nomad, &h, &HashMap::new()).as_deref(),
            Some("xyz")
        );
        let q = HashMap::from([("token".to_string(), "legacy".to_string())]);
        assert_eq!(
            request_token(Product::Consul, &HeaderMap::new(), &q).as_deref(),
            Some("legacy")
        );
        assert_eq!(request_token(Product::Vault, &HeaderMap::new(), &q), None);
    }
}
