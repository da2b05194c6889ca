//! The entity types of `entity`: their names, Kimai collections and how they are rendered.

use crate::tools::render::Kind;

/// The entity types of this tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Type {
    Project,
    Activity,
    Customer,
    User,
    Team,
    Tag,
    Invoice,
    Holiday,
}

impl Type {
    pub(super) fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "project" => Type::Project,
            "activity" => Type::Activity,
            "customer" => Type::Customer,
            "user" => Type::User,
            "team" => Type::Team,
            "tag" => Type::Tag,
            "invoice" => Type::Invoice,
            "holiday" => Type::Holiday,
            _ => return None,
        })
    }
    pub(super) fn name(self) -> &'static str {
        match self {
            Type::Project => "project",
            Type::Activity => "activity",
            Type::Customer => "customer",
            Type::User => "user",
            Type::Team => "team",
            Type::Tag => "tag",
            Type::Invoice => "invoice",
            Type::Holiday => "holiday",
        }
    }
    pub(super) fn plural(self) -> &'static str {
        match self {
            Type::Project => "projects",
            Type::Activity => "activities",
            Type::Customer => "customers",
            Type::User => "users",
            Type::Team => "teams",
            Type::Tag => "tags",
            Type::Invoice => "invoices",
            Type::Holiday => "public holidays",
        }
    }
    pub(super) fn path(self) -> &'static str {
        match self {
            Type::Project => "/projects",
            Type::Activity => "/activities",
            Type::Customer => "/customers",
            Type::User => "/users",
            Type::Team => "/teams",
            Type::Tag => "/tags",
            Type::Invoice => "/invoices",
            Type::Holiday => "/public-holidays",
        }
    }
    pub(super) fn kind(self) -> Kind {
        match self {
            Type::Project => Kind::Project,
            Type::Activity => Kind::Activity,
            Type::Customer => Kind::Customer,
            Type::Team => Kind::Team,
            Type::Tag => Kind::Tag,
            Type::Invoice => Kind::Invoice,
            // Users are rendered by `render_user`.
            Type::User | Type::Holiday => Kind::Holiday,
        }
    }
}
