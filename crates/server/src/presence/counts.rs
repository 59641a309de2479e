//! Who is viewing each image on this server, as pure logic (no I/O, no clock): connections
//! (for the viewer limits) and people (for the live count). [`super::memory`] publishes its
//! counts; [`super::redis`] adds the people it counts to the cluster's count.
//!
//! The live count counts **people**, not tabs: a signed user, or an anonymous person (the id
//! their token proves), counts once however many tabs they have open. An anonymous connection
//! without a token is a fresh person, and tokens cost nothing, so anonymous people are counted
//! at most `counted_anonymous_per_ip` per client address: one address opening 150 sockets moves
//! the count by that much at most. Signed users are vouched for by the site and always count.
//!
//! Connections are limited per image (the tenant's limit) and per image per address, so a few
//! addresses cannot take every viewer slot of an image (defaults: 10,000 and 50, so filling an
//! image takes 200 addresses while an office behind one NAT still fits). There is no separate
//! limit per person: anonymous identities cost nothing to make, so only the address bounds an
//! attacker, and a signed person's tabs are bounded by their address too. Everything is checked
//! and counted under one lock, so concurrent joins cannot overshoot.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use image_chat_protocol::TenantId;

use super::{Full, Viewer, ViewerLimits};
use crate::store::ImageKey;

#[derive(Debug, Default)]
struct Address {
    connections: u32,
    anonymous_people: u32,
}

#[derive(Debug)]
struct Person {
    tabs: u32,
    /// The address the person is counted under (that of their first tab): `None` for signed
    /// users and unknown addresses, which are not capped.
    capped_under: Option<IpAddr>,
}

#[derive(Debug, Default)]
struct Image {
    connections: u32,
    addresses: HashMap<IpAddr, Address>,
    people: HashMap<String, Person>,
    online: u32,
}

/// Viewers per image, forgotten when an image has none.
#[derive(Default)]
pub struct PresenceCounts {
    /// Anonymous people counted per address (0: all).
    counted_anonymous_per_ip: u32,
    images: Mutex<HashMap<ImageKey, Image>>,
}

impl PresenceCounts {
    /// Counts counting at most `counted_anonymous_per_ip` anonymous people per address and
    /// image (0: all).
    pub fn new(counted_anonymous_per_ip: u32) -> Self {
        Self {
            counted_anonymous_per_ip,
            images: Mutex::default(),
        }
    }

    fn counted(&self, anonymous_people: u32) -> bool {
        self.counted_anonymous_per_ip == 0 || anonymous_people <= self.counted_anonymous_per_ip
    }

    /// Lets `viewer` in unless a limit is reached; returns the image's new live count.
    pub fn try_join(
        &self,
        image: &ImageKey,
        viewer: &Viewer,
        limits: ViewerLimits,
    ) -> Result<u32, Full> {
        // Plain counters: a panic elsewhere cannot leave them inconsistent.
        let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        let state = images.entry(image.clone()).or_default();
        if limits.per_image > 0 && state.connections >= limits.per_image {
            return Err(Full::Image);
        }
        if let (Some(ip), true) = (viewer.ip, limits.per_ip > 0) {
            let held = state.addresses.get(&ip).map_or(0, |a| a.connections);
            if held >= limits.per_ip {
                return Err(Full::Address);
            }
        }
        state.connections += 1;
        if let Some(ip) = viewer.ip {
            state.addresses.entry(ip).or_default().connections += 1;
        }
        match state.people.entry(viewer.person.clone()) {
            Entry::Occupied(mut person) => person.get_mut().tabs += 1,
            Entry::Vacant(slot) => {
                let capped_under = viewer.ip.filter(|_| viewer.anonymous);
                slot.insert(Person {
                    tabs: 1,
                    capped_under,
                });
                let counts = match capped_under {
                    Some(ip) => {
                        let address = state.addresses.entry(ip).or_default();
                        address.anonymous_people += 1;
                        self.counted(address.anonymous_people)
                    }
                    None => true,
                };
                if counts {
                    state.online += 1;
                }
            }
        }
        Ok(state.online)
    }

    /// Counts `viewer` (who joined `image`) out; returns the image's new live count.
    pub fn leave(&self, image: &ImageKey, viewer: &Viewer) -> u32 {
        let mut images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = images.get_mut(image) else {
            return 0;
        };
        state.connections = state.connections.saturating_sub(1);
        if let Some(ip) = viewer.ip
            && let Some(address) = state.addresses.get_mut(&ip)
        {
            address.connections = address.connections.saturating_sub(1);
        }
        if let Entry::Occupied(mut person) = state.people.entry(viewer.person.clone()) {
            person.get_mut().tabs -= 1;
            if person.get().tabs == 0 {
                let counted = match person.remove().capped_under {
                    Some(ip) => match state.addresses.get_mut(&ip) {
                        Some(address) => {
                            let was = address.anonymous_people;
                            address.anonymous_people = was.saturating_sub(1);
                            // The count is signed + Σ min(anonymous, cap): it drops only while
                            // the address is at or under its cap.
                            self.counted(was)
                        }
                        None => false,
                    },
                    None => true,
                };
                if counted {
                    state.online = state.online.saturating_sub(1);
                }
            }
        }
        state
            .addresses
            .retain(|_, a| a.connections > 0 || a.anonymous_people > 0);
        let online = state.online;
        if state.connections == 0 {
            images.remove(image);
        }
        online
    }

    /// Current live count (people).
    pub fn count(&self, image: &ImageKey) -> u32 {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        images.get(image).map_or(0, |state| state.online)
    }

    /// The people `image`'s live count counts here: every signed user and, per address, at
    /// most `counted_anonymous_per_ip` anonymous people (which ones does not matter: the count
    /// is the same). What a cluster-wide count adds up over the nodes.
    pub fn counted_people(&self, image: &ImageKey) -> Vec<String> {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = images.get(image) else {
            return Vec::new();
        };
        let mut per_address: HashMap<IpAddr, u32> = HashMap::new();
        let mut people = Vec::with_capacity(state.online as usize);
        for (id, person) in &state.people {
            let counts = match person.capped_under {
                Some(ip) => {
                    let seen = per_address.entry(ip).or_default();
                    *seen += 1;
                    self.counted(*seen)
                }
                None => true,
            };
            if counts {
                people.push(id.clone());
            }
        }
        people
    }

    /// Images with at least one connection here.
    pub fn images(&self) -> Vec<ImageKey> {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        images.keys().cloned().collect()
    }

    /// Current connections on `image`.
    pub fn connections(&self, image: &ImageKey) -> u32 {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        images.get(image).map_or(0, |state| state.connections)
    }

    /// Current connections per tenant, over its images and pages (tenants with none left out).
    pub fn connections_by_tenant(&self) -> HashMap<TenantId, u64> {
        let images = self.images.lock().unwrap_or_else(PoisonError::into_inner);
        let mut tenants: HashMap<TenantId, u64> = HashMap::new();
        for (image, state) in images.iter().filter(|(_, state)| state.connections > 0) {
            *tenants.entry(image.tenant.clone()).or_default() += u64::from(state.connections);
        }
        tenants
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image_chat_protocol::{ImageId, TenantId};

    fn key(image: &str) -> ImageKey {
        ImageKey::image(TenantId::new("t"), ImageId::new(image))
    }

    fn anon(person: &str, ip: &str) -> Viewer {
        Viewer {
            person: format!("anon:{person}"),
            anonymous: true,
            ip: Some(ip.parse().unwrap()),
        }
    }

    fn signed(person: &str, ip: &str) -> Viewer {
        Viewer {
            person: format!("sso:{person}"),
            anonymous: false,
            ip: Some(ip.parse().unwrap()),
        }
    }

    const OPEN: ViewerLimits = ViewerLimits {
        per_image: 0,
        per_ip: 0,
    };

    #[test]
    fn people_count_once_however_many_tabs() {
        let p = PresenceCounts::new(10);
        let a = key("a");
        // Two people in three tabs: 2.
        assert_eq!(p.try_join(&a, &anon("x", "10.0.0.1"), OPEN), Ok(1));
        assert_eq!(p.try_join(&a, &anon("x", "10.0.0.1"), OPEN), Ok(1));
        assert_eq!(p.try_join(&a, &signed("y", "10.0.0.2"), OPEN), Ok(2));
        assert_eq!(p.connections(&a), 3);
        assert_eq!(p.leave(&a, &anon("x", "10.0.0.1")), 2);
        assert_eq!(p.leave(&a, &anon("x", "10.0.0.1")), 1);
        assert_eq!(p.leave(&a, &signed("y", "10.0.0.2")), 0);
        assert_eq!(p.connections(&a), 0);
        assert_eq!(p.leave(&a, &signed("y", "10.0.0.2")), 0);
        assert!(p.images.lock().unwrap().is_empty());
    }

    #[test]
    fn anonymous_people_count_at_most_the_cap_per_address() {
        let p = PresenceCounts::new(3);
        let a = key("a");
        let viewers: Vec<_> = (0..150).map(|i| anon(&i.to_string(), "10.0.0.1")).collect();
        for v in &viewers {
            p.try_join(&a, v, OPEN).unwrap();
        }
        assert_eq!(p.count(&a), 3);
        // Other addresses and signed users still count.
        assert_eq!(p.try_join(&a, &anon("o", "10.0.0.2"), OPEN), Ok(4));
        assert_eq!(p.try_join(&a, &signed("s", "10.0.0.1"), OPEN), Ok(5));
        // The count stays min(people, cap) as they leave, down to zero.
        for (left, v) in viewers.iter().enumerate() {
            let online = p.leave(&a, v);
            let remaining = 150 - (left as u32 + 1);
            assert_eq!(online, 2 + remaining.min(3));
        }
    }

    #[test]
    fn viewer_limits_per_image_and_per_address() {
        let p = PresenceCounts::new(0);
        let a = key("a");
        let limits = ViewerLimits {
            per_image: 5,
            per_ip: 2,
        };
        assert!(p.try_join(&a, &anon("1", "10.0.0.1"), limits).is_ok());
        assert!(p.try_join(&a, &anon("2", "10.0.0.1"), limits).is_ok());
        assert_eq!(
            p.try_join(&a, &anon("3", "10.0.0.1"), limits),
            Err(Full::Address)
        );
        assert!(p.try_join(&a, &anon("4", "10.0.0.2"), limits).is_ok());
        assert!(p.try_join(&a, &anon("5", "10.0.0.2"), limits).is_ok());
        assert!(p.try_join(&a, &anon("6", "10.0.0.3"), limits).is_ok());
        assert_eq!(
            p.try_join(&a, &anon("7", "10.0.0.4"), limits),
            Err(Full::Image)
        );
        // A refused join counted nothing; another image is unaffected.
        assert_eq!(p.count(&a), 5);
        assert_eq!(p.try_join(&key("b"), &anon("7", "10.0.0.4"), limits), Ok(1));
        p.leave(&a, &anon("1", "10.0.0.1"));
        assert!(p.try_join(&a, &anon("3", "10.0.0.1"), limits).is_ok());
    }

    #[test]
    fn counted_people_are_as_many_as_the_count() {
        let p = PresenceCounts::new(2);
        let a = key("a");
        for i in 0..5 {
            p.try_join(&a, &anon(&i.to_string(), "10.0.0.1"), OPEN)
                .unwrap();
        }
        p.try_join(&a, &anon("x", "10.0.0.2"), OPEN).unwrap();
        p.try_join(&a, &signed("s", "10.0.0.1"), OPEN).unwrap();
        p.try_join(&a, &signed("s", "10.0.0.3"), OPEN).unwrap();
        let mut people = p.counted_people(&a);
        people.sort();
        assert_eq!(people.len() as u32, p.count(&a));
        assert_eq!(people.len(), 4);
        assert!(people.contains(&"sso:s".to_string()));
        assert!(people.contains(&"anon:x".to_string()));
        assert_eq!(p.images(), vec![a.clone()]);
        assert!(p.counted_people(&key("none")).is_empty());
    }
}
