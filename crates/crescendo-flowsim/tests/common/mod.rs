//! Starts flowsim in-process on 127.0.0.1:0 through the library entry point.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use crescendo_flowsim::{Config, Stats};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Sim {
    pub base: String,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Sim {
    pub async fn start(config: Config) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(crescendo_flowsim::serve(listener, config, shutdown.clone()));
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Self {
            base,
            client,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &str) -> reqwest::Response {
        let mut req = self
            .client
            .put(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            req = req.header("authorization", token);
        }
        req.send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(token) = token {
            req = req.header("authorization", token);
        }
        req.send().await.unwrap()
    }

    pub async fn stats(&self) -> Stats {
        let resp = self.get("/__sim/stats", None).await;
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// Polls `/__sim/stats` until `seen` holds and returns those stats; fails, naming
    /// `what`, only if that takes longer than a generous deadline.
    pub async fn wait_for(&self, what: &str, seen: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stats = self.stats().await;
            if seen(&stats) {
                return stats;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited 30 s for {what}: {stats:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// `POST` with no body (the lock actions), with an optional `Authorization` value.
    pub async fn post(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.post(self.url(path));
        if let Some(token) = token {
            req = req.header("authorization", token);
        }
        req.send().await.unwrap()
    }

    /// `POST /oauth/token` with Basic credentials and `grant_type`.
    pub async fn token_request(&self, id: &str, secret: &str, grant: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", grant)])
            .send()
            .await
            .unwrap()
    }

    /// A fresh access token for a configured client, as an `Authorization` value.
    pub async fn bearer(&self, id: &str, secret: &str) -> String {
        let resp = self.token_request(id, secret, "client_credentials").await;
        assert_eq!(resp.status(), 200);
        let body: serde_json::Value = resp.json().await.unwrap();
        format!("Bearer {}", body["access_token"].as_str().unwrap())
    }

    /// Asks `serve` to shut down.
    pub fn cancel(&self) {
        self.shutdown.cancel();
    }

    /// Cancels and waits for `serve` to return.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("serve returns after shutdown")
            .unwrap()
            .unwrap();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}
