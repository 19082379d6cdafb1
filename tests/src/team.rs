//! A tenant team with exactly the rights the chart gives a team: the chart's tenant-team
//! ClusterRole (rendered from `charts/tributary`, so a change of the chart is what is tested)
//! bound in the tenant's namespace to a user the tests act as (`kubectl --as`), as the
//! role's comment tells an admin to bind it.

use std::sync::OnceLock;

use crate::{helm, kubectl, run, try_run, unique};

/// The release name the team role is rendered under (never the demo's `tributary`, whose
/// chart owns its own copy).
const RELEASE: &str = "hostile";
const ROLE: &str = "hostile-tributary-tenant-team";

pub struct Team {
    pub namespace: String,
    pub user: String,
}

/// Applies the chart's tenant-team ClusterRole and its admission policy for sink pods once
/// per test binary (cluster-scoped, named for the release `hostile`: shared by the tests).
fn team_role() {
    static APPLIED: OnceLock<()> = OnceLock::new();
    APPLIED.get_or_init(|| {
        let rendered = run(helm(), &["template", RELEASE, "charts/tributary", "-s", "templates/rbac.yaml"], None);
        let role = rendered
            .split("\n---\n")
            .find(|doc| doc.contains(&format!("name: {ROLE}\n")))
            .expect("the chart ships the tenant-team ClusterRole");
        run("kubectl", &["apply", "-f", "-"], Some(role));
        let policy = run(helm(), &["template", RELEASE, "charts/tributary", "-s", "templates/admission.yaml"], None);
        run("kubectl", &["apply", "-f", "-"], Some(&policy));
    });
}

impl Team {
    /// The team of `namespace` (which must exist): a user bound to the chart's team role there.
    pub fn of(namespace: &str) -> Team {
        team_role();
        let user = unique("team-member");
        let binding = format!("team-{user}");
        kubectl(&[
            "create",
            "rolebinding",
            &binding,
            "-n",
            namespace,
            &format!("--clusterrole={ROLE}"),
            "--user",
            &user,
        ]);
        Team { namespace: namespace.to_string(), user }
    }

    /// `kubectl ARGS` as the team member, in the team's namespace.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        self.kubectl_with(args, None)
    }

    /// `kubectl ARGS` as the team member with `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Result<String, String> {
        self.kubectl_with(args, Some(stdin))
    }

    fn kubectl_with(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut all = vec!["--as", self.user.as_str(), "-n", self.namespace.as_str()];
        all.extend(args);
        try_run("kubectl", &all, stdin)
    }

    /// `kubectl apply -f -` of `yaml` as the team member: the API server's answer.
    pub fn apply(&self, yaml: &str) -> Result<String, String> {
        self.kubectl_with(&["apply", "-f", "-"], Some(yaml))
    }

    /// `kubectl auth can-i ARGS` as the team member.
    pub fn can_i(&self, args: &[&str]) -> bool {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        self.kubectl(&all).is_ok_and(|out| out.trim() == "yes")
    }
}
