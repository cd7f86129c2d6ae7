//! `[blob]` settings: where raw payloads and bodies are stored.
//!
//! ```toml
//! [blob]
//! provider = "local"          # "local" (default) | "s3" | "azure"
//! ```
//!
//! See `docs/blob-storage.md` for every backend's settings.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

/// Which backend stores blobs, and how to reach it.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "provider", rename_all = "lowercase")]
pub enum BlobConfig {
    /// A directory on this machine (`{data_dir}/blobs` unless `path` is set).
    Local(LocalBlobConfig),
    /// An S3 bucket (AWS, or a compatible service such as MinIO or moto through `endpoint_url`).
    S3(S3BlobConfig),
    /// An Azure Blob Storage container (or Azurite).
    Azure(AzureBlobConfig),
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self::Local(LocalBlobConfig::default())
    }
}

impl BlobConfig {
    /// The backend's name as used in metrics labels and errors.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::S3(_) => "s3",
            Self::Azure(_) => "azure",
        }
    }
}

/// `provider = "local"`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalBlobConfig {
    /// The directory; created if missing. Default: `{data_dir}/blobs`.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// `provider = "s3"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3BlobConfig {
    /// The bucket; it must exist.
    pub bucket: String,
    /// The bucket's region. Default: the AWS default chain's region when no static credentials
    /// are set, else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// An S3-compatible endpoint (MinIO, moto, ...), for example `http://127.0.0.1:9000`.
    /// Plain `http://` is allowed only when written here explicitly.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Address buckets as `https://{bucket}.{endpoint}` instead of `{endpoint}/{bucket}`.
    #[serde(default)]
    pub virtual_hosted_style: bool,
    /// A key prefix inside the bucket (so one bucket can serve several installations).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Static credentials; set both or neither. Without them the AWS default chain is used
    /// (environment, shared config and profiles, web identity, ECS, EC2 instance metadata).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret of `access_key_id`.
    #[serde(default)]
    pub secret_access_key: Option<SecretString>,
    /// A session token for temporary static credentials.
    #[serde(default)]
    pub session_token: Option<SecretString>,
}

/// `provider = "azure"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureBlobConfig {
    /// The storage account. Required unless `use_emulator` (then `devstoreaccount1`).
    #[serde(default)]
    pub account: Option<String>,
    /// The container; it must exist.
    pub container: String,
    /// The account's shared key. Without it (and without `use_emulator`) credentials come from
    /// the `AZURE_*` environment: workload identity, client secret, or managed identity.
    #[serde(default)]
    pub access_key: Option<SecretString>,
    /// The blob endpoint, for example a sovereign cloud's, or Azurite's path-style
    /// `http://127.0.0.1:10000/devstoreaccount1`. Default: `https://{account}.blob.core.windows.net`.
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Talk to Azurite with its well-known account and key; `endpoint_url` defaults to
    /// `http://127.0.0.1:10000/devstoreaccount1`. For development and tests only.
    #[serde(default)]
    pub use_emulator: bool,
    /// A key prefix inside the container.
    #[serde(default)]
    pub prefix: Option<String>,
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        #[serde(default)]
        blob: BlobConfig,
    }

    fn parse(toml: &str) -> Result<BlobConfig, toml::de::Error> {
        toml::from_str::<Outer>(toml).map(|o| o.blob)
    }

    #[test]
    fn defaults_to_local() {
        assert!(matches!(
            parse("").unwrap(),
            BlobConfig::Local(LocalBlobConfig { path: None })
        ));
        let local = parse("[blob]\nprovider = \"local\"\npath = \"/srv/blobs\"").unwrap();
        assert!(matches!(
            local,
            BlobConfig::Local(LocalBlobConfig { path: Some(_) })
        ));
    }

    #[test]
    fn parses_s3_and_azure() {
        let s3 = parse(
            r#"[blob]
provider = "s3"
bucket = "b"
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:9000"
access_key_id = "AKIA"
secret_access_key = "s3cr3t-value"
"#,
        )
        .unwrap();
        let BlobConfig::S3(s3) = s3 else {
            panic!("not s3")
        };
        assert_eq!(
            s3.secret_access_key.unwrap().expose_secret(),
            "s3cr3t-value"
        );

        let azure = parse(
            "[blob]\nprovider = \"azure\"\ncontainer = \"c\"\nuse_emulator = true\naccess_key = \"a2V5\"",
        )
        .unwrap();
        assert!(matches!(
            azure,
            BlobConfig::Azure(AzureBlobConfig {
                use_emulator: true,
                ..
            })
        ));
    }

    #[test]
    fn rejects_unknown_fields_and_providers() {
        assert!(parse("[blob]\nprovider = \"local\"\nbucket = \"b\"").is_err());
        assert!(parse("[blob]\nprovider = \"s3\"\nbucket = \"b\"\nregoin = \"x\"").is_err());
        assert!(parse("[blob]\nprovider = \"gcs\"").is_err());
        assert!(parse("[blob]\npath = \"/x\"").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let BlobConfig::S3(s3) = parse(
            "[blob]\nprovider = \"s3\"\nbucket = \"b\"\naccess_key_id = \"AKIA\"\nsecret_access_key = \"s3cr3t-value\"\nsession_token = \"tok3n-value\"",
        )
        .unwrap() else {
            panic!("not s3")
        };
        let debug = format!("{s3:?}");
        assert!(
            !debug.contains("s3cr3t-value") && !debug.contains("tok3n-value"),
            "{debug}"
        );
    }
}
