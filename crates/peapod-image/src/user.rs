//! Resolves a user spec (`""`, `name`, `uid`, `name:group`, `uid:gid`) against the image's
//! /etc/passwd and /etc/group, as runc and containerd do.

use crate::{Image, ImageError, ImageStore};

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `user` for `image`: (uid, gid, supplementary gids). An unknown user or group
/// name is an error; a numeric uid missing from /etc/passwd gets gid 0. Supplementary gids
/// are, like containerd's, the primary gid followed by every /etc/group group listing the
/// user as a member (a group named like the user excluded).
pub fn resolve_user(
    store: &ImageStore,
    image: &Image,
    user: &str,
) -> Result<(u32, u32, Vec<u32>), ImageError> {
    let text = |path| -> Result<String, ImageError> {
        let bytes = store.read_file(image, path)?.unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let passwd = parse_passwd(&text("/etc/passwd")?);
    let groups = parse_group(&text("/etc/group")?);
    resolve(&passwd, &groups, user)
}

fn resolve(
    passwd: &[PasswdEntry],
    groups: &[GroupEntry],
    user: &str,
) -> Result<(u32, u32, Vec<u32>), ImageError> {
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let (uid, mut gid, name) = match user_part.parse::<u32>() {
        Ok(uid) => match passwd.iter().find(|p| p.uid == uid) {
            Some(entry) => (uid, entry.gid, Some(entry.name.as_str())),
            None => (uid, 0, None),
        },
        Err(_) => {
            let entry = passwd.iter().find(|p| p.name == user_part).ok_or_else(|| {
                ImageError::UnknownUser {
                    user: user_part.into(),
                }
            })?;
            (entry.uid, entry.gid, Some(entry.name.as_str()))
        }
    };
    if let Some(group) = group_part.filter(|g| !g.is_empty()) {
        gid = match group.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|g| g.name == group)
                .map(|g| g.gid)
                .ok_or_else(|| ImageError::UnknownGroup {
                    group: group.into(),
                })?,
        };
    }
    let mut supplementary = vec![gid];
    if let Some(name) = name {
        let member_of = groups
            .iter()
            .filter(|g| g.name != name && g.members.iter().any(|m| m == name));
        for group in member_of {
            if !supplementary.contains(&group.gid) {
                supplementary.push(group.gid);
            }
        }
    }
    Ok((uid, gid, supplementary))
}

/// `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped like libc does.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    records(text)
        .filter_map(|fields| {
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// `name:password:gid:member,member`.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    records(text)
        .filter_map(|fields| {
            let members = fields.get(3).copied().unwrap_or_default();
            Some(GroupEntry {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: members
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

fn records(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| line.split(':').collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # comment\n\
        daemon:x:1:1::/:/sbin/nologin\n\
        app:x:1000:1000:App:/home/app:/bin/sh\n\
        broken line\n\
        nobody:x:65534:65534:nobody:/:/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root,app\n\
        app:x:1000:app\n\
        video:x:44:app\n\
        nogroup:x:65533:\n";

    fn run(user: &str) -> Result<(u32, u32, Vec<u32>), ImageError> {
        resolve(&parse_passwd(PASSWD), &parse_group(GROUP), user)
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(run("").unwrap(), (0, 0, vec![0, 10]));
        assert_eq!(run("root").unwrap(), (0, 0, vec![0, 10]));
        assert_eq!(run("app").unwrap(), (1000, 1000, vec![1000, 10, 44]));
        assert_eq!(run("1000").unwrap(), (1000, 1000, vec![1000, 10, 44]));
        assert_eq!(run("nobody").unwrap(), (65534, 65534, vec![65534]));
    }

    #[test]
    fn explicit_groups() {
        assert_eq!(run("app:video").unwrap(), (1000, 44, vec![44, 10]));
        assert_eq!(run("1000:5000").unwrap(), (1000, 5000, vec![5000, 10, 44]));
        assert_eq!(run("4242:4343").unwrap(), (4242, 4343, vec![4343]));
        assert!(matches!(
            run("app:nosuch"),
            Err(ImageError::UnknownGroup { group }) if group == "nosuch"
        ));
    }

    #[test]
    fn unknown_user_name_is_an_error_but_unknown_uid_is_not() {
        assert!(matches!(run("ghost"), Err(ImageError::UnknownUser { user }) if user == "ghost"));
        assert_eq!(run("4242").unwrap(), (4242, 0, vec![0]));
        assert_eq!(resolve(&[], &[], "").unwrap(), (0, 0, vec![0]));
        assert!(resolve(&[], &[], "root").is_err());
    }
}
