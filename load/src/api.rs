//! Calls to Confab's public REST API, and the user pool each run creates.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::{stream, StreamExt as _, TryStreamExt as _};
use rand::distributions::{Alphanumeric, DistString as _};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest wait for one setup request (registration hashes a password, so it is slow).
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Registration attempts per user while the server answers 429.
const MAX_ATTEMPTS: u32 = 30;

/// Wait before retrying a 429 that carries no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A registered user and the access token registration returned.
#[derive(Clone, Debug)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub password: Arc<str>,
    pub token: String,
}

/// Client for one server, used to prepare users and chats before a measured phase.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
    /// Random tag in every email and client id of this run, so runs against
    /// the same database never collide.
    pub run_tag: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    user: UserId,
    access_token: String,
}

#[derive(Deserialize)]
struct UserId {
    id: i64,
}

/// The `id` of a created or listed resource; other fields are not needed.
#[derive(Deserialize)]
pub struct Created {
    pub id: i64,
}

/// One page of `GET /chats/{id}/messages`.
#[derive(Deserialize)]
pub struct MessagePage {
    pub items: Vec<Created>,
    #[serde(default)]
    pub has_more: bool,
}

impl MessagePage {
    pub fn last_id(&self) -> Option<i64> {
        self.items.last().map(|item| item.id)
    }
}

impl Api {
    pub fn new(addr: SocketAddr) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(SETUP_TIMEOUT)
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self {
            base: format!("http://{addr}"),
            client,
            run_tag: Alphanumeric
                .sample_string(&mut rand::thread_rng(), 8)
                .to_lowercase(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Checks that a Confab server answers `/healthz` at the address.
    pub async fn check_health(&self) -> anyhow::Result<()> {
        let response = self
            .client
            .get(self.url("/healthz"))
            .send()
            .await
            .with_context(|| format!("no server answers at {}; start it first", self.base))?;
        if !response.status().is_success() {
            bail!("{}/healthz returned {}", self.base, response.status());
        }
        Ok(())
    }

    /// Registers `count` users with unique emails, `concurrency` at a time.
    pub async fn create_users(
        &self,
        count: usize,
        concurrency: usize,
    ) -> anyhow::Result<Vec<Account>> {
        let started = std::time::Instant::now();
        eprintln!("registering {count} users, {concurrency} at a time");
        let accounts: Vec<Account> = stream::iter(0..count)
            .map(|index| self.register(index, Arc::from(strong_password())))
            .buffered(concurrency.max(1))
            .try_collect()
            .await?;
        eprintln!(
            "registered {count} users in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(accounts)
    }

    /// Registers one user, waiting and retrying while the server answers
    /// 429 (registration may be rate limited per client address).
    async fn register(&self, index: usize, password: Arc<str>) -> anyhow::Result<Account> {
        let email = format!("load-{}-{index}@example.com", self.run_tag);
        let body = json!({ "email": email, "password": &*password });
        let mut attempts = 0;
        let response = loop {
            let response = self
                .client
                .post(self.url("/auth/register"))
                .json(&body)
                .send()
                .await
                .context("registration request failed")?;
            attempts += 1;
            if response.status() != StatusCode::TOO_MANY_REQUESTS || attempts >= MAX_ATTEMPTS {
                break response;
            }
            if attempts == 1 && index == 0 {
                eprintln!(
                    "registration is rate limited; raise the server's limit for load runs \
                     (see docs/BENCHMARKS.md)"
                );
            }
            tokio::time::sleep(retry_after(&response)).await;
        };
        let tokens: TokenResponse = expect_json(response, StatusCode::CREATED, "register").await?;
        Ok(Account {
            id: tokens.user.id,
            email,
            password,
            token: tokens.access_token,
        })
    }

    /// Creates a group owned by `owner` with `members` (the owner excluded).
    pub async fn create_group(
        &self,
        owner: &Account,
        title: &str,
        members: &[i64],
    ) -> anyhow::Result<i64> {
        let body = json!({ "kind": "group", "title": title, "member_ids": members });
        let response = self
            .client
            .post(self.url("/chats"))
            .bearer_auth(&owner.token)
            .json(&body)
            .send()
            .await
            .context("chat creation request failed")?;
        let chat: Created = expect_json(response, StatusCode::CREATED, "create chat").await?;
        Ok(chat.id)
    }

    /// Posts one message and returns its id.
    pub async fn post_message(
        &self,
        sender: &Account,
        chat_id: i64,
        body: &str,
    ) -> anyhow::Result<i64> {
        let response = self
            .client
            .post(self.url(&format!("/chats/{chat_id}/messages")))
            .bearer_auth(&sender.token)
            .json(&json!({ "body": body }))
            .send()
            .await
            .context("message request failed")?;
        let message: Created = expect_json(response, StatusCode::CREATED, "post message").await?;
        Ok(message.id)
    }

    /// Reads the page of up to 200 messages after `after` (from the start when `None`).
    pub async fn page_after(
        &self,
        reader: &Account,
        chat_id: i64,
        after: Option<i64>,
    ) -> anyhow::Result<MessagePage> {
        let mut url = format!("/chats/{chat_id}/messages?limit=200");
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        let response = self
            .client
            .get(self.url(&url))
            .bearer_auth(&reader.token)
            .send()
            .await
            .context("message page request failed")?;
        expect_json(response, StatusCode::OK, "page messages").await
    }

    /// Counts the messages stored in a chat by paging through all of them.
    pub async fn count_messages(&self, reader: &Account, chat_id: i64) -> anyhow::Result<u64> {
        let mut count = 0;
        let mut after = Some(0);
        loop {
            let page = self.page_after(reader, chat_id, after).await?;
            count += page.items.len() as u64;
            if !page.has_more || page.items.is_empty() {
                return Ok(count);
            }
            after = page.last_id();
        }
    }
}

/// Returns a random 36-character password with upper- and lower-case
/// letters, digits and punctuation, so it passes any password-strength
/// check the server applies.
fn strong_password() -> String {
    let mut rng = rand::thread_rng();
    let mut part = || Alphanumeric.sample_string(&mut rng, 10);
    format!("{}-{}!{}#Aa1", part(), part(), part())
}

/// Reads the delay in seconds from a 429's `Retry-After`, capped at 10 s.
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
        .map(|seconds| Duration::from_secs(seconds.clamp(1, 10)))
        .unwrap_or(DEFAULT_RETRY_AFTER)
}

/// Decodes a JSON response, or fails with the status and the server's problem detail.
async fn expect_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    expected: StatusCode,
    action: &str,
) -> anyhow::Result<T> {
    let status = response.status();
    let url = response.url().path().to_owned();
    if status != expected && !(status.is_success() && expected.is_success()) {
        let detail: Value = response.json().await.unwrap_or(Value::Null);
        let hint = if status == StatusCode::NOT_FOUND && url.starts_with("/chats") {
            "; this server has no chat API, so message scenarios cannot run against it"
        } else {
            ""
        };
        bail!("{action}: {url} returned {status}: {detail}{hint}");
    }
    response
        .json()
        .await
        .with_context(|| format!("{action}: {url} returned invalid JSON"))
}

#[cfg(test)]
mod tests {
    use super::strong_password;

    #[test]
    fn passwords_mix_character_classes() {
        let password = strong_password();
        assert_eq!(password.len(), 36);
        assert!(password.chars().any(|c| c.is_ascii_uppercase()));
        assert!(password.chars().any(|c| c.is_ascii_lowercase()));
        assert!(password.chars().any(|c| c.is_ascii_digit()));
        assert!(password.chars().any(|c| c.is_ascii_punctuation()));
    }

    #[test]
    fn passwords_differ() {
        assert_ne!(strong_password(), strong_password());
    }
}
