//! `kubectl get cronjobs` columns (kube 1.32's printCronJob): Name, Schedule, Timezone, Suspend,
//! Active, Last Schedule, Age, and with `-o wide` Containers, Images, Selector.

use k8s_openapi::api::batch::v1::CronJob;
use peapod_api::label_selector::format_label_selector;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use crate::batch::v1::job::table::container_cells;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
        Column::new("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones"),
        Column::new("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false."),
        Column::new("Active", "integer", "A list of pointers to currently running jobs."),
        Column::new("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
        AGE,
        Column::new("Containers", "string", "Names of each container in the template.").wide(),
        Column::new("Images", "string", "Images referenced by each container in the template.").wide(),
        Column::new("Selector", "string", "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
    ]
}

pub fn cells(cron_job: &CronJob) -> Vec<Value> {
    let spec = cron_job.spec.clone().unwrap_or_default();
    let status = cron_job.status.clone().unwrap_or_default();
    let job_spec = spec.job_template.spec.unwrap_or_default();
    let containers = job_spec
        .template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let (names, images) = container_cells(containers);
    let last_schedule = status.last_schedule_time.map_or("<none>".to_owned(), |at| {
        peapod_printers::since(Some(at.0), jiff::Timestamp::now())
    });
    let suspend = match spec.suspend {
        None => "<unset>",
        Some(true) => "True",
        Some(false) => "False",
    };
    vec![
        name_cell(&cron_job.metadata),
        json!(spec.schedule),
        json!(spec.time_zone.as_deref().unwrap_or("<none>")),
        json!(suspend),
        json!(status.active.map_or(0, |a| a.len())),
        json!(last_schedule),
        age_cell(&cron_job.metadata),
        json!(names),
        json!(images),
        json!(format_label_selector(job_spec.selector.as_ref())),
    ]
}
