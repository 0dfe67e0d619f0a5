// /ui/routes: RuleEndpoints and Rules (KubeEdge's router), created, edited and deleted as YAML;
// each Rule's success and failure counts and its last errors, live.
import { useState } from 'preact/hooks';
import { del, put, R, resourcePath } from '../api.js';
import { useCan, useList } from '../hooks.js';
import { html } from '../html.js';
import { setQueryParam, useLocation } from '../router.js';
import { ActionButton, ErrorAlert, NamespacePicker, Table, toYaml, YamlEditor } from '../ui.js';
import { createObjects, useNamespaces } from './apps.js';

const NEW_RULE = `apiVersion: rules.kubeedge.io/v1
kind: RuleEndpoint
metadata: {name: my-rest}
spec: {ruleEndpointType: rest, properties: {}}
---
apiVersion: rules.kubeedge.io/v1
kind: RuleEndpoint
metadata: {name: my-eventbus}
spec: {ruleEndpointType: eventbus, properties: {}}
---
apiVersion: rules.kubeedge.io/v1
kind: Rule
metadata: {name: my-rule}
spec:
  source: my-rest
  sourceResource: {path: /test}
  target: my-eventbus
  targetResource: {topic: test}
`;

function describeResource(r) {
  return Object.entries(r || {})
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
}

export function RoutesPage() {
  const { query } = useLocation();
  const ns = query.get('namespace') || '';
  const rules = useList(R.rules, { ns });
  const endpoints = useList(R.ruleendpoints, { ns });
  const namespaces = useNamespaces(rules.items);
  const canCreate = useCan('create', R.rules, ns);
  const canUpdate = useCan('update', R.rules, ns);
  const canDelete = useCan('delete', R.rules, ns);
  const [editing, setEditing] = useState(null); // {yaml, path} | {yaml} for a new one
  const [actionError, setActionError] = useState(null);
  const remove = async (res, obj) => {
    if (!confirm(`Delete ${res.kind} ${obj.metadata.namespace}/${obj.metadata.name}?`)) return;
    await del(resourcePath(res, obj.metadata.namespace, obj.metadata.name));
  };
  const edit = (res, obj) => setEditing({ yaml: toYaml(obj), path: resourcePath(res, obj.metadata.namespace, obj.metadata.name) });
  const actions = (res) => ({
    title: 'Actions',
    render: (o) => html`<div class="buttons">
      ${canUpdate && html`<button type="button" onClick=${() => edit(res, o)} aria-label=${`Edit ${o.metadata.name}`}>Edit</button>`}
      ${canDelete && html`<${ActionButton} danger action=${() => remove(res, o)} onError=${setActionError} aria-label=${`Delete ${o.metadata.name}`}>Delete<//>`}
    </div>`,
  });
  return html`<section aria-labelledby="routes-title">
    <h1 id="routes-title">Routes</h1>
    <div class="toolbar">
      <${NamespacePicker} value=${ns} namespaces=${namespaces} onChange=${(v) => setQueryParam('namespace', v)} />
      ${canCreate && !editing && html`<button type="button" onClick=${() => setEditing({ yaml: NEW_RULE })}>Create</button>`}
    </div>
    ${editing &&
    html`<section class="panel">
      <${YamlEditor}
        label=${editing.path ? 'Edit (YAML)' : 'New RuleEndpoints and Rules (YAML)'}
        initial=${editing.yaml}
        submitLabel=${editing.path ? 'Save' : 'Create'}
        onSubmit=${async (docs) => {
          if (editing.path) await put(editing.path, docs[0]);
          else await createObjects(docs, ns);
          setEditing(null);
        }}
        onCancel=${() => setEditing(null)}
      />
    </section>`}
    <${ErrorAlert} error=${actionError || rules.error || endpoints.error} />
    <h2>Rules</h2>
    <${Table} label="Rules" rows=${rules.items} rowKey=${(r) => r.metadata.uid} empty=${rules.loaded ? 'No Rules' : 'Loading…'} columns=${[
      { title: 'Namespace', render: (r) => r.metadata.namespace },
      { title: 'Name', render: (r) => r.metadata.name },
      { title: 'Source', render: (r) => `${r.spec.source} (${describeResource(r.spec.sourceResource)})` },
      { title: 'Target', render: (r) => `${r.spec.target} (${describeResource(r.spec.targetResource)})` },
      { title: 'Succeeded', render: (r) => html`<span aria-label="Succeeded">${String((r.status && r.status.successMessages) || 0)}</span>` },
      { title: 'Failed', render: (r) => html`<span aria-label="Failed">${String((r.status && r.status.failMessages) || 0)}</span>` },
      {
        title: 'Last errors',
        render: (r) => {
          const errs = (r.status && r.status.errors) || [];
          return errs.length ? html`<details><summary>${errs[errs.length - 1]}</summary><ul>${errs.map((e) => html`<li>${e}</li>`)}</ul></details>` : '';
        },
      },
      actions(R.rules),
    ]} />
    <h2>Rule endpoints</h2>
    <${Table} label="Rule endpoints" rows=${endpoints.items} rowKey=${(e) => e.metadata.uid} empty=${endpoints.loaded ? 'No RuleEndpoints' : 'Loading…'} columns=${[
      { title: 'Namespace', render: (e) => e.metadata.namespace },
      { title: 'Name', render: (e) => e.metadata.name },
      { title: 'Type', render: (e) => e.spec.ruleEndpointType },
      { title: 'Properties', render: (e) => describeResource(e.spec.properties) },
      actions(R.ruleendpoints),
    ]} />
  </section>`;
}
