//! `confab user`: create accounts and change roles directly in the database,
//! for example to make the first administrator.
//!
//! The commands work while a server runs on the same database. A role change
//! ends the user's sessions durably, and a running server applies it to
//! access tokens at its next revocation sync (`CONFAB_REVOCATION_SYNC_INTERVAL`).

use std::io::{BufRead as _, IsTerminal as _};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret as _, SecretString};

use crate::auth::password::PasswordHasher;
use crate::auth::strength::{check_strength_blocking, user_inputs};
use crate::auth::validate::{
    check_display_name, check_password, default_display_name, normalize_email,
};
use crate::auth::{unix_now, Role};
use crate::config::{
    check_min_password_score, StorageConfig, ARGON2_MIN_ITERATIONS, ARGON2_MIN_MEMORY_KIB,
    ARGON2_MIN_PARALLELISM, DEFAULT_MIN_PASSWORD_SCORE,
};
use crate::store::users::CreateUserError;
use crate::store::{now_millis, NewUser, Store};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account. The password is read from standard input: one line,
    /// or a prompt without echo when standard input is a terminal.
    Create(CreateArgs),
    /// Change an account's role and end its sessions.
    SetRole(SetRoleArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Email address of the new account.
    #[arg(long)]
    pub email: String,

    /// Role of the new account: `user` or `admin`.
    #[arg(long, default_value = "user")]
    pub role: Role,

    /// Name shown to other users; default: the part of the email before `@`.
    #[arg(long)]
    pub display_name: Option<String>,

    /// Lowest zxcvbn score (0 to 4) the password needs, as for the server.
    #[arg(long, env = "CONFAB_MIN_PASSWORD_SCORE", default_value_t = DEFAULT_MIN_PASSWORD_SCORE)]
    pub min_password_score: u8,

    #[command(flatten)]
    pub storage: StorageConfig,
}

#[derive(Debug, Args)]
pub struct SetRoleArgs {
    /// Email address of the account to change.
    #[arg(long)]
    pub email: String,

    /// New role: `user` or `admin`.
    #[arg(long)]
    pub role: Role,

    #[command(flatten)]
    pub storage: StorageConfig,
}

impl UserCommand {
    /// Returns the storage settings of the command.
    pub fn storage(&self) -> &StorageConfig {
        match self {
            Self::Create(args) => &args.storage,
            Self::SetRole(args) => &args.storage,
        }
    }
}

/// Runs a `confab user` command, reading a password from standard input if it needs one.
pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create(args) => {
            let password = tokio::task::spawn_blocking(read_password)
                .await
                .context("password prompt failed")??;
            let user = create_user(&args, password).await?;
            println!(
                "created user {} <{}> with role {}",
                user.id, user.email, user.role
            );
        }
        UserCommand::SetRole(args) => {
            let ended = set_role(&args).await?;
            match ended {
                None => println!(
                    "{} already has role {}; nothing changed",
                    args.email, args.role
                ),
                Some(count) => println!(
                    "{} now has role {}; ended {count} session(s)",
                    args.email, args.role
                ),
            }
        }
    }
    Ok(())
}

/// Creates an account with `password`.
pub async fn create_user(
    args: &CreateArgs,
    password: SecretString,
) -> anyhow::Result<crate::store::User> {
    let email = normalize_email(&args.email)
        .map_err(|error| anyhow::anyhow!("--email: {}", error.message))?;
    let display_name = match &args.display_name {
        Some(name) => check_display_name(name)
            .map_err(|error| anyhow::anyhow!("--display-name: {}", error.message))?,
        None => default_display_name(&email),
    };
    check_password("password", password.expose_secret())
        .map_err(|error| anyhow::anyhow!("the password {}", error.message))?;
    check_min_password_score(args.min_password_score)?;
    let inputs = user_inputs(&email, &display_name);
    check_strength_blocking(
        "password",
        password.clone(),
        inputs,
        args.min_password_score,
    )
    .await?
    .map_err(|error| anyhow::anyhow!("the password {}", error.message))?;

    // Hashed at the minimum cost: a server configured higher re-hashes the
    // password at its own cost on the first login.
    let hasher = PasswordHasher::new(
        ARGON2_MIN_MEMORY_KIB,
        ARGON2_MIN_ITERATIONS,
        ARGON2_MIN_PARALLELISM,
        1,
    )
    .await?;
    let password_hash = hasher.hash(password).await?;

    let store = open_store(&args.storage).await?;
    let created = store
        .create_user(NewUser {
            email: &email,
            display_name: &display_name,
            password_hash: &password_hash,
            role: args.role,
            created_at: now_millis(),
        })
        .await;
    store.close().await;
    match created {
        Ok(user) => Ok(user),
        Err(CreateUserError::EmailTaken) => anyhow::bail!(
            "an account with email {email} already exists; use `confab user set-role` to change its role"
        ),
        Err(CreateUserError::Database(error)) => Err(error).context("failed to create the user"),
    }
}

/// Changes an account's role. Returns `None` when it already had that role,
/// otherwise the number of sessions ended.
pub async fn set_role(args: &SetRoleArgs) -> anyhow::Result<Option<usize>> {
    let email = normalize_email(&args.email)
        .map_err(|error| anyhow::anyhow!("--email: {}", error.message))?;
    let store = open_store(&args.storage).await?;
    let result = change_role(&store, &email, args.role).await;
    store.close().await;
    result
}

async fn change_role(store: &Store, email: &str, role: Role) -> anyhow::Result<Option<usize>> {
    let account = store
        .account_by_email(email)
        .await?
        .with_context(|| format!("no account has email {email}"))?;
    if account.user.role == role {
        return Ok(None);
    }
    let ended = store
        .change_role(account.user.id, role, unix_now(), now_millis())
        .await
        .context("failed to change the role")?;
    Ok(Some(ended.len()))
}

async fn open_store(storage: &StorageConfig) -> anyhow::Result<Store> {
    crate::store::files::create_data_dir(&storage.data_dir)?;
    crate::connect_store(storage).await
}

/// Reads a password: twice without echo from a terminal, else one line from
/// standard input. It never comes from the command line, where other users
/// of the machine could read it in the process list.
fn read_password() -> anyhow::Result<SecretString> {
    if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password("Password: ").context("failed to read the password")?;
        let second = rpassword::prompt_password("Repeat the password: ")
            .context("failed to read the password")?;
        if first != second {
            anyhow::bail!("the two passwords differ; run the command again");
        }
        return Ok(SecretString::from(first));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("failed to read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    Ok(SecretString::from(password.to_owned()))
}
