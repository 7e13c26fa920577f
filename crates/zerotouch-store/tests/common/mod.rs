//! What the durability tests of both persistent stores write and look for.
#![allow(dead_code)]

use zerotouch_core::{DeviceSecret, Instant, KeyId, Passphrase, Pin, SessionId};
use zerotouch_store::{
    AccountId, AssociationAction, AssociationChange, Bands, DeviceIdentity, DeviceRecord,
    MIN_PIN_ITERATIONS, NewNetwork, PinRecord, RegistrarCredential, ScanReport, ScannedLabel,
    SecurityType, SeenNetwork, StaticDataKey, Store, StoreError,
};

pub const T0: Instant = Instant(1_700_000_000_000);

/// A device without secrets, its key id made from `n`.
pub fn device(n: u32) -> DeviceRecord {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[4..8].copy_from_slice(b"test");
    DeviceRecord {
        key_id: KeyId(id),
        identity: DeviceIdentity::PublicKey(vec![0x30, 0x59, (n & 0xff) as u8]),
        device_type: 7,
        serial: u64::from(n),
        product_number: "ZT1".into(),
        pin: None,
        device_secret: None,
        blocked: false,
        created_at: T0,
    }
}

/// A plain column the secrets test writes (the SSID of the account's own network), to show
/// that a search of the database would find a secret if it were there.
pub const PLAIN_SSID: &[u8] = b"alice-home";

/// Writes one of every kind of secret through `s` and checks it reads back; returns what must
/// not appear in the database: (what, bytes).
pub async fn write_every_secret(s: &impl Store) -> Vec<(&'static str, Vec<u8>)> {
    let passphrase = b"Sup3r-Secret-Home-Passphrase!";
    let pin_digits = "90817263";
    let secret = [0xA5u8; 32];
    let session_state = b"SESSION-STATE-WITH-EPHEMERAL-PRIVATE-KEY".to_vec();
    let neighbour_ssid = b"neighbour-ssid-seen-in-scan".to_vec();

    let a = s.create_account("alice", T0).await.unwrap();
    s.add_network(
        NewNetwork {
            account: a,
            ssid: PLAIN_SSID.to_vec(),
            passphrase: Passphrase::new(passphrase).unwrap(),
            security: SecurityType::Wpa3Personal,
            bands: Bands::GHZ_5,
        },
        T0,
    )
    .await
    .unwrap();
    let pin = PinRecord::new(&Pin::new(pin_digits).unwrap(), MIN_PIN_ITERATIONS).unwrap();
    let pin_record_bytes = pin.to_bytes();
    let mut d = device(1);
    d.pin = Some(pin);
    d.device_secret = Some(DeviceSecret::new(secret));
    s.import_devices(vec![d.clone()]).await.unwrap();
    let r = s
        .add_registrar("app", RegistrarCredential::ApiTokenHash([1; 32]), T0)
        .await
        .unwrap();
    s.apply_association_change(AssociationChange {
        action: AssociationAction::Add,
        device: d.key_id,
        account: a,
        registrar: r,
        label: Some(ScannedLabel {
            fingerprint: "ABCD".into(),
            device_type: 7,
            product_number: "ZT1".into(),
            had_pin: true,
        }),
        at: T0,
    })
    .await
    .unwrap();
    s.compare_and_swap_session(
        SessionId([1; 16]),
        None,
        session_state.clone(),
        Instant(T0.0 + 60_000),
        T0,
    )
    .await
    .unwrap();
    s.record_scan_report(ScanReport {
        device: d.key_id,
        session: SessionId([1; 16]),
        networks: vec![SeenNetwork {
            ssid: neighbour_ssid.clone(),
            rssi_dbm: -60,
            band: Bands::GHZ_2_4,
            channel: 6,
            security: SecurityType::Wpa2Personal,
        }],
        at: T0,
    })
    .await
    .unwrap();
    // Everything reads back through the store.
    assert_eq!(s.device(&d.key_id).await.unwrap().unwrap(), d);

    vec![
        ("passphrase", passphrase.to_vec()),
        ("PIN digits", pin_digits.as_bytes().to_vec()),
        ("PIN record", pin_record_bytes[20..].to_vec()),
        ("PIN salt", pin_record_bytes[..16].to_vec()),
        ("device secret", secret.to_vec()),
        ("session state", session_state),
        ("scanned SSID", neighbour_ssid),
    ]
}

/// Adds networks "one" and "two" with different passphrases to a new account.
pub async fn two_networks(s: &impl Store) -> AccountId {
    let a = s.create_account("alice", T0).await.unwrap();
    for (ssid, pass) in [("one", "passphrase-one"), ("two", "passphrase-two")] {
        s.add_network(
            NewNetwork {
                account: a,
                ssid: ssid.into(),
                passphrase: Passphrase::new(pass.as_bytes()).unwrap(),
                security: SecurityType::Wpa2Personal,
                bands: Bands::GHZ_2_4,
            },
            T0,
        )
        .await
        .unwrap();
    }
    a
}

/// After network two's sealed passphrase was overwritten with network one's: reading them
/// fails, the passphrase does not open in the wrong row.
pub async fn copied_passphrase_does_not_open(s: &impl Store, account: AccountId) {
    let err = s.networks_of_account(account).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SealedFieldRejected {
                field: "passphrase"
            }
        ),
        "{err:?}"
    );
}

/// Writes one audit entry (device 1 added to a new account).
pub async fn one_audit_entry(s: &impl Store) {
    let a = s.create_account("alice", T0).await.unwrap();
    let r = s
        .add_registrar("app", RegistrarCredential::ApiTokenHash([1; 32]), T0)
        .await
        .unwrap();
    s.import_devices(vec![device(1)]).await.unwrap();
    s.apply_association_change(AssociationChange {
        action: AssociationAction::Add,
        device: device(1).key_id,
        account: a,
        registrar: r,
        label: None,
        at: T0,
    })
    .await
    .unwrap();
    assert_eq!(s.audit_log(0, 10).await.unwrap().len(), 1);
}

/// Creates a database under one data key (through `open`), then finds that another key is
/// refused and the first still opens.
pub async fn only_the_creating_data_key_opens<S, F>(open: impl Fn(StaticDataKey) -> F)
where
    S: Store,
    F: Future<Output = Result<S, StoreError>>,
{
    let s = open(StaticDataKey([1; 32])).await.unwrap();
    s.create_account("alice", T0).await.unwrap();
    drop(s);
    match open(StaticDataKey([2; 32])).await {
        Err(StoreError::DataKey(_)) => {}
        Err(e) => panic!("another data key: {e:?}"),
        Ok(_) => panic!("another data key opened the database"),
    }
    open(StaticDataKey([1; 32])).await.unwrap();
}

/// `err` says the database's schema version 99 is newer than this build's 1.
pub fn is_schema_99_too_new(err: &StoreError) {
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 1
            }
        ),
        "{err:?}"
    );
}
