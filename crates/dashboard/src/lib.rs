//! The Steward dashboard: server-rendered pages on a running operator, served beside its
//! HTTP API at `/`.
//!
//! | method | path | page |
//! |---|---|---|
//! | GET | `/` | count per phase; specs filtered by `ns`, `phase`, `q`, paginated (`page`), what needs attention first |
//! | GET | `/specs/{ns}/{name}` | phase, conditions with reasons and ages, owned objects desired against live, recent events (live), the document with its generation |
//! | GET | `/gc` | the blocked deletion set with its digest, and the approval form |
//! | POST | `/gc/approve` | form fields `digest` and `token`: approves that set |
//! | GET | `/cluster` | server versions and features from start-up detection, caches, edge proxies |
//! | GET | `/assets/dashboard.css`, `/assets/dashboard.js` | the style sheet and the live-update script |
//!
//! Reading needs no token. Approving needs the operator's API token, typed into the GC
//! page's form and posted in the form's body (same origin only, compared in constant
//! time): the pages work without JavaScript, the token never appears in a URL, a log
//! or an answer, and a page of another site cannot post it because it does not know it.
//!
//! Pages read correctly without JavaScript; `assets/dashboard.js` follows the API's
//! server-sent events (`/api/v1/events`) and refreshes the regions marked `data-live`
//! by fetching the same page again, without reloading it.
#![deny(missing_docs)]

pub mod pages;
pub mod routes;
pub mod view;

pub use routes::{EdgeSource, router, router_with};
