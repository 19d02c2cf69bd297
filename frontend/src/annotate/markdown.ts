// Markdown → sanitized HTML for untrusted text (model responses, prompts, instructions).
//
// `marked` renders, `highlight.js` (core + a few languages) colours fenced code and
// DOMPurify removes everything that could run script or disguise itself as part of the
// app (event handlers, javascript: URLs, forms, inline styles, ids, ARIA roles…).
// The result is only ever inserted with dangerouslySetInnerHTML.

import DOMPurify, { type Config } from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import cpp from "highlight.js/lib/languages/cpp";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import { Marked } from "marked";

const LANGUAGES = { bash, cpp, go, java, javascript, json, python, rust, sql, typescript };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

/** Auto-detection is skipped for blocks larger than this (it runs every grammar). */
const MAX_AUTODETECT_CHARS = 20_000;

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** Highlights one code block; returns the inner HTML and the classes of its <code>. */
export function highlightCode(code: string, lang: string | undefined): { html: string; className: string } {
  const language = (lang ?? "").trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  const safeName = language.replace(/[^a-z0-9+#_-]/g, "");
  if (language && hljs.getLanguage(language)) {
    const result = hljs.highlight(code, { language, ignoreIllegals: true });
    return { html: result.value, className: `hljs language-${safeName}` };
  }
  if (!language && code.length <= MAX_AUTODETECT_CHARS) {
    const result = hljs.highlightAuto(code);
    return { html: result.value, className: result.language ? `hljs language-${result.language}` : "hljs" };
  }
  return { html: escapeHtml(code), className: safeName ? `hljs language-${safeName}` : "hljs" };
}

// One start tag, with quoted attribute values (which may contain ">"). Written so that
// every split is unambiguous: no catastrophic backtracking on unterminated tags.
const START_TAG = /<[a-zA-Z][^\s/><]*(?:[\s/]+[^\s/>"'=<]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s/"'=<>`]+))?)*[\s/]*>/g;
const EVENT_HANDLER_ATTR = /(\s|\/)on[a-z0-9_-]*\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+)/gi;

/**
 * Drops on* attributes from the start tags of raw HTML. Not a security boundary (DOMPurify
 * is): it only keeps the browser from reporting CSP violations while DOMPurify parses.
 */
export function stripEventHandlers(html: string): string {
  return html.replace(START_TAG, (tag) => tag.replace(EVENT_HANDLER_ATTR, "$1"));
}

const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    code({ text, lang }) {
      const { html, className } = highlightCode(text, lang);
      return `<pre><code class="${className}">${html}</code></pre>\n`;
    },
    html({ text }) {
      return stripEventHandlers(text);
    },
    // Task-list items: a glyph instead of an <input> (forms are stripped below).
    checkbox({ checked }) {
      return checked ? "☑ " : "☐ ";
    },
  },
});

const purify = DOMPurify(window);

// Only highlight.js classes survive, so raw HTML cannot borrow the app's own styles.
purify.addHook("uponSanitizeAttribute", (_node, data) => {
  if (data.attrName !== "class") return;
  const kept = data.attrValue.split(/\s+/).filter((c) => /^(hljs|language-)[\w+#-]*$/.test(c));
  if (kept.length === 0) data.keepAttr = false;
  else data.attrValue = kept.join(" ");
});

// Links open in a new tab without access to this window.
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const PURIFY_CONFIG: Config = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: [
    "style", "link", "meta", "base", "form", "input", "button", "textarea", "select", "option",
    "label", "fieldset", "iframe", "frame", "frameset", "object", "embed", "dialog", "template",
    "video", "audio", "source", "track", "svg", "math",
  ],
  FORBID_ATTR: ["style", "id", "name", "role", "tabindex", "autofocus", "target", "srcset", "action", "formaction", "accesskey"],
  ALLOW_ARIA_ATTR: false,
  ALLOW_DATA_ATTR: false,
};

/** Renders markdown to HTML that is safe to insert into the page. */
export function renderMarkdown(source: string): string {
  let html: string;
  try {
    html = marked.parse(source, { async: false });
  } catch {
    html = `<pre>${escapeHtml(source)}</pre>`;
  }
  return sanitizeHtml(html);
}

/** DOMPurify with this module's policy. */
export function sanitizeHtml(html: string): string {
  return purify.sanitize(html, PURIFY_CONFIG) as string;
}
