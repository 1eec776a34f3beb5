//! The closed sets of words a plan field may take (`kind = "etcd"`,
//! `arch = "arm64"`, …), each declared once as an enum whose variants carry
//! their kebab-case word.
//!
//! That one declaration is what every consumer reads: validation accepts a
//! word through [`Choice::parse`] and lists [`Choice::NAMES`] when it
//! refuses one, the JSON schema prints the same list, `init` and the command
//! line take their values from it, and the planner matches on the variants.
//! A new datastore or architecture is therefore one new line here, and every
//! `match` that does not handle it stops compiling instead of quietly
//! treating it as another. [`crate::diagnostic::Code`] is declared the same
//! way. The spec keeps these fields as strings on purpose: an unknown word is
//! reported by validation with its span and the allowed list, not by serde.

use std::fmt;

/// A closed set of words: the variants and the word each is written as.
pub trait Choice: Copy + Eq + fmt::Debug + 'static {
    /// Every variant, in the order they are listed to users.
    const ALL: &'static [Self];
    /// The words of [`Choice::ALL`], in the same order.
    const NAMES: &'static [&'static str];

    /// The word as written in a plan.
    fn as_str(self) -> &'static str;

    /// The variant written as `word`, if any (exact, case-sensitive).
    fn parse(word: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == word)
    }
}

/// Declares an enum of words: `Variant = "word",` per line. It gets
/// [`Choice`], inherent `ALL`, `NAMES`, `as_str` and `parse` (so callers need
/// not import the trait), `Display` and serde's `Serialize` as the word.
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $word:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in the order they are listed to users.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];
            /// The words of `ALL`, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($word),+];

            /// The word as written in a plan.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $word,)+
                }
            }

            /// The variant written as `word`, if any.
            pub fn parse(word: &str) -> Option<Self> {
                <Self as $crate::choice::Choice>::parse(word)
            }
        }

        impl $crate::choice::Choice for $name {
            const ALL: &'static [Self] = Self::ALL;
            const NAMES: &'static [&'static str] = Self::NAMES;

            fn as_str(self) -> &'static str {
                Self::as_str(self)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use choice;

choice! {
    /// `cluster.distribution`: which procedure family the plan is for.
    #[derive(Default)]
    pub enum Distribution {
        /// An RKE2 cluster (the default).
        #[default]
        Rke2 = "rke2",
        /// Rancher HA on RKE1.
        Rke1 = "rke1",
        /// A K3s cluster: RKE2's procedures, with K3s's names
        /// ([`crate::model::Flavor::K3S`]).
        K3s = "k3s",
    }
}

choice! {
    /// `cluster.install-method`: where rke2 and its scripts live.
    #[derive(Default)]
    pub enum InstallMethod {
        /// `/usr/local/bin` (tarball; the default).
        #[default]
        Tar = "tar",
        /// `/usr/bin` (RPM packages).
        Rpm = "rpm",
    }
}

choice! {
    /// `datastore.kind`. The model's `Datastore` adds what each kind needs.
    #[derive(Default)]
    pub enum DatastoreKind {
        /// Embedded etcd.
        #[default]
        Etcd = "etcd",
        /// SQLite (a single server).
        Sqlite = "sqlite",
        /// External PostgreSQL.
        Postgres = "postgres",
        /// External MySQL or MariaDB.
        Mysql = "mysql",
    }
}

choice! {
    /// `install.source`: how the target version reaches the nodes.
    #[derive(Default)]
    pub enum InstallSource {
        /// The upstream install script over the network (the default).
        #[default]
        Online = "online",
        /// install.sh and artifacts already copied to every node.
        Airgap = "airgap",
    }
}

choice! {
    /// `install.arch`: the nodes' architecture, as RKE2's artifacts name it.
    #[derive(Default)]
    pub enum Arch {
        /// x86-64 (the default).
        #[default]
        Amd64 = "amd64",
        /// 64-bit ARM.
        Arm64 = "arm64",
        /// IBM Z.
        S390x = "s390x",
    }
}

choice! {
    /// `nodes.role` of an RKE2 node.
    pub enum Role {
        /// Runs rke2-server.
        Server = "server",
        /// Runs rke2-agent.
        Agent = "agent",
    }
}

choice! {
    /// One of `nodes.roles` of an RKE1 node. The order of the variants is the
    /// canonical order roles are printed in, whatever order the plan uses.
    #[derive(PartialOrd, Ord)]
    pub enum Rke1Role {
        /// Runs the Kubernetes API.
        Controlplane = "controlplane",
        /// Runs an etcd member.
        Etcd = "etcd",
        /// Runs workloads.
        Worker = "worker",
    }
}

choice! {
    /// `rke.deployment`: how Rancher was installed, which names its
    /// deployment (and, by default, its container).
    #[derive(Default)]
    pub enum Deployment {
        /// The RKE add-on install of Rancher v2.0-v2.4: deployment `cattle` (the default).
        #[default]
        Cattle = "cattle",
        /// The helm chart: deployment `rancher`.
        Rancher = "rancher",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<C: Choice + fmt::Display>() {
        assert_eq!(C::ALL.len(), C::NAMES.len());
        for (c, name) in C::ALL.iter().zip(C::NAMES) {
            assert_eq!(c.as_str(), *name);
            assert_eq!(c.to_string(), *name);
            assert_eq!(C::parse(name), Some(*c));
            assert_eq!(C::parse(&name.to_ascii_uppercase()), None);
        }
    }

    #[test]
    fn every_word_parses_back_to_its_variant() {
        round_trip::<Distribution>();
        round_trip::<InstallMethod>();
        round_trip::<DatastoreKind>();
        round_trip::<InstallSource>();
        round_trip::<Arch>();
        round_trip::<Role>();
        round_trip::<Rke1Role>();
        round_trip::<Deployment>();
        assert_eq!(DatastoreKind::parse(""), None);
    }

    #[test]
    fn words_serialise_as_themselves() {
        assert_eq!(
            serde_json::to_string(&[Arch::S390x, Arch::Amd64]).unwrap(),
            r#"["s390x","amd64"]"#
        );
    }

    #[test]
    fn rke1_roles_sort_in_their_canonical_order() {
        let mut roles = vec![Rke1Role::Worker, Rke1Role::Controlplane, Rke1Role::Etcd];
        roles.sort();
        assert_eq!(roles, Rke1Role::ALL);
    }
}
