//! Device identities. The secret half lives in the platform keychain behind the app's
//! [`KeyStore`]; the only way secret key material leaves Rust is the text handed to
//! [`KeyStore::store_secret_key_text`] (and it comes back through
//! [`KeyStore::load_secret_key_text`]). Nothing else exports it.

use crate::ToysealError;
use std::sync::Arc;
use toyseal_core::{DeviceIdentity, OsRng};

/// The app's secure storage for device identities (Android Keystore-wrapped storage, the iOS
/// Keychain). Implement it in Kotlin or Swift; toyseal calls it from the thread that called
/// [`Identity::load_or_generate`].
#[uniffi::export(with_foreign)]
pub trait KeyStore: Send + Sync {
    /// The secret key text stored under `name`, or `None`.
    fn load_secret_key_text(&self, name: String) -> Result<Option<String>, ToysealError>;
    /// Stores `secret_key_text` under `name`, replacing any previous value atomically. This
    /// text IS the device's secret key: keep it in the keychain only (never log, sync or back
    /// it up in the clear).
    fn store_secret_key_text(
        &self,
        name: String,
        secret_key_text: String,
    ) -> Result<(), ToysealError>;
    /// Deletes the identity under `name`; returns whether there was one.
    fn delete(&self, name: String) -> Result<bool, ToysealError>;
}

/// What a device is in the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
#[non_exhaustive]
pub enum Role {
    /// A toy.
    Toy,
    /// A guardian's phone.
    Guardian,
    /// A non-governing member's phone (a grandparent's): receives and sends messages, never
    /// counts in a roster quorum.
    Member,
}

impl Role {
    fn of(role: toyseal_core::Role) -> Result<Self, ToysealError> {
        match role {
            toyseal_core::Role::Toy => Ok(Self::Toy),
            toyseal_core::Role::Guardian => Ok(Self::Guardian),
            toyseal_core::Role::Member => Ok(Self::Member),
            other => Err(ToysealError::Internal {
                reason: format!("unknown role {other}"),
            }),
        }
    }

    fn core(self) -> toyseal_core::Role {
        match self {
            Self::Toy => toyseal_core::Role::Toy,
            Self::Guardian => toyseal_core::Role::Guardian,
            Self::Member => toyseal_core::Role::Member,
        }
    }
}

/// This device's identity (Ed25519 signing key + X25519 key). Opaque: it signs, seals and
/// opens for you, and never hands out its secret keys.
#[derive(uniffi::Object)]
pub struct Identity {
    pub(crate) inner: Arc<DeviceIdentity>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("device_id", &self.inner.device_id())
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Identity {
    /// Loads the identity stored under `name`, or generates one with `role`, stores it and
    /// returns it. A stored identity of another role is refused.
    #[uniffi::constructor]
    pub fn load_or_generate(
        store: Arc<dyn KeyStore>,
        name: String,
        role: Role,
    ) -> Result<Arc<Self>, ToysealError> {
        if let Some(text) = store.load_secret_key_text(name.clone())? {
            let identity = DeviceIdentity::from_secret_key_text(&text)?;
            if identity.role() != role.core() {
                return Err(ToysealError::invalid(format!(
                    "the identity stored under {name:?} is a {}, not a {}",
                    identity.role(),
                    role.core()
                )));
            }
            return Ok(Arc::new(Self {
                inner: Arc::new(identity),
            }));
        }
        let identity = DeviceIdentity::generate(role.core(), &mut OsRng);
        let text = identity.export_secret_key_text()?;
        store.store_secret_key_text(name, text.to_string())?;
        Ok(Arc::new(Self {
            inner: Arc::new(identity),
        }))
    }

    /// The public half, to share with the family.
    pub fn public_key(&self) -> Arc<PublicKey> {
        Arc::new(PublicKey {
            inner: self.inner.public().clone(),
        })
    }

    /// The device id (32 hex digits).
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_string()
    }

    /// The role.
    pub fn role(&self) -> Result<Role, ToysealError> {
        Role::of(self.inner.role())
    }
}

/// A device's public identity (what rosters list and sessions pin).
#[derive(Clone, PartialEq, Eq, uniffi::Object)]
#[uniffi::export(Eq, Display)]
pub struct PublicKey {
    pub(crate) inner: toyseal_core::PublicIdentity,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

#[uniffi::export]
impl PublicKey {
    /// Parses the text form (`toyseal1…`, what `toString()` gives).
    #[uniffi::constructor]
    pub fn parse(text: String) -> Result<Arc<Self>, ToysealError> {
        Ok(Arc::new(Self {
            inner: text.trim().parse()?,
        }))
    }

    /// The device id (32 hex digits).
    pub fn device_id(&self) -> String {
        self.inner.device_id().to_string()
    }

    /// The role.
    pub fn role(&self) -> Result<Role, ToysealError> {
        Role::of(self.inner.role())
    }
}

impl PublicKey {
    pub(crate) fn wrap(inner: toyseal_core::PublicIdentity) -> Arc<Self> {
        Arc::new(Self { inner })
    }
}
