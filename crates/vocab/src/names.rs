//! The one way a name of the vocabulary is declared: [`names!`] turns a list of
//! `Variant = "spelling"` into an enum whose spelling exists exactly once, with `as_str`,
//! `Display`, `FromStr`, serde (as that string) and clap's `ValueEnum` derived from it, so a
//! manifest deserializes straight into the type, a command-line option parses into it, and a
//! result table stores the same string.
use std::fmt;

/// A string that is none of a vocabulary's names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What kind of name was expected, e.g. `strategy`.
    pub what: &'static str,
    pub got: String,
    pub known: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?} (known: {})",
            self.what,
            self.got,
            self.known.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

/// Declares a closed set of names (see the module documentation). Declaration order is the
/// type's `Ord`, which is the order of tables and legends.
#[macro_export]
macro_rules! names {
    (
        $(#[$meta:meta])*
        $vis:vis enum $T:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $V:ident = $s:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $T {
            $( $(#[$vmeta])* $V, )+
        }

        impl $T {
            /// Every value, in declaration order.
            pub const ALL: &'static [$T] = &[$($T::$V),+];
            /// Every spelling, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($s),+];
            /// What kind of name this is, for messages.
            pub const WHAT: &'static str = $what;

            /// The spelling in manifests, command lines and result tables.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($T::$V => $s,)+
                }
            }
        }

        impl ::std::fmt::Display for $T {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $T {
            type Err = $crate::UnknownName;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::UnknownName {
                        what: $what,
                        got: s.to_string(),
                        known: Self::NAMES,
                    })
            }
        }

        impl ::serde::Serialize for $T {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $T {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> ::std::result::Result<Self, D::Error> {
                struct V;
                impl ::serde::de::Visitor<'_> for V {
                    type Value = $T;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        write!(f, "one of: {}", $T::NAMES.join(", "))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, s: &str) -> ::std::result::Result<$T, E> {
                        s.parse().map_err(|_| E::unknown_variant(s, $T::NAMES))
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl ::clap::ValueEnum for $T {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<::clap::builder::PossibleValue> {
                Some(::clap::builder::PossibleValue::new(self.as_str()))
            }
        }
    };
}
