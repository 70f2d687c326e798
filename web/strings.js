// The pack's user-facing strings, in the editor's language.
//
// They live in locales/<lang>/main.json beside web/ under the "animateflow" key, where ComfyUI's custom-node
// manager collects every pack's locales and serves them at /i18n (the editor merges the same files into its own
// translations). The language is the editor's `Comfy.Locale` setting; a string missing there falls back to
// English, and one missing in English too shows its key, so a gap is visible rather than blank.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NAMESPACE = "animateflow";
let active = {};
let english = {};

function lookup(table, key) {
  return key.split(".").reduce((value, part) => (value && typeof value === "object" ? value[part] : undefined), table);
}

function editorLocale() {
  const chosen = app.extensionManager?.setting?.get?.("Comfy.Locale") ?? app.ui?.settings?.getSettingValue?.("Comfy.Locale");
  return chosen || navigator.language || "en";
}

// Loaded once, before any extension of the pack registers (extension modules import this one).
async function load() {
  try {
    const response = await api.fetchApi("/i18n");
    if (!response.ok) return;
    const all = await response.json();
    english = all.en?.[NAMESPACE] ?? {};
    const locale = editorLocale();
    active = all[locale]?.[NAMESPACE] ?? all[locale.split("-")[0]]?.[NAMESPACE] ?? english;
  } catch (error) {
    console.warn("AnimateFlow: could not load the pack's strings from /i18n", error);
  }
}

export const ready = load();

// `t("livePreview.title", {node: "KSampler"})`: the string for the key with {name} placeholders filled in.
export function t(key, values = {}) {
  const template = lookup(active, key) ?? lookup(english, key) ?? key;
  return String(template).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
