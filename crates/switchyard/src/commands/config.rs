//! `switchyard config check`.

use secrecy::ExposeSecret;
use switchyard_config::ConfigLoader;

use crate::{cli::ConfigCheckArgs, output};

pub fn check(args: &ConfigCheckArgs) -> anyhow::Result<()> {
    let config = ConfigLoader::new().file(args.file.as_deref()).load()?;
    let url = config.effective_database_url();
    let backend = match switchyard_store::Backend::from_url(url.expose_secret())? {
        switchyard_store::Backend::Sqlite => "sqlite",
        switchyard_store::Backend::Postgres => "postgres",
    };
    output::print_text(&format!(
        "configuration is valid\n  listen    {}\n  data_dir  {}\n  database  {backend}\n",
        config.listen,
        config.data_dir.display(),
    ))
}
