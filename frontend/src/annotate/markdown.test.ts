import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

function dom(html: string): HTMLElement {
  const div = document.createElement("div");
  div.innerHTML = html;
  return div;
}

describe("renderMarkdown", () => {
  it("renders basic markdown", () => {
    const el = dom(renderMarkdown("# Title\n\nSome **bold** text and `code`.\n\n- a\n- b"));
    expect(el.querySelector("h1")?.textContent).toBe("Title");
    expect(el.querySelector("strong")?.textContent).toBe("bold");
    expect(el.querySelector("p code")?.textContent).toBe("code");
    expect(el.querySelectorAll("li")).toHaveLength(2);
  });

  it("strips <script> elements", () => {
    const html = renderMarkdown("Hello <script>alert(1)</script> world\n\n<script>alert(2)</script>");
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain("alert(");
    expect(dom(html).textContent).toContain("Hello");
  });

  it("strips event handler attributes", () => {
    const html = renderMarkdown('<img src=x onerror="alert(1)">\n\n<div onclick="alert(2)" onmouseover="x()">hi</div>');
    expect(html).not.toMatch(/onerror|onclick|onmouseover/i);
    const el = dom(html);
    const img = el.querySelector("img");
    expect(img).not.toBeNull();
    expect(img!.getAttributeNames().some((name) => name.startsWith("on"))).toBe(false);
    expect(el.textContent).toContain("hi");
  });

  it("removes javascript: URLs from markdown and HTML links", () => {
    const html = renderMarkdown(
      '[click](javascript:alert(1)) <a href="javascript:alert(2)">raw</a> <a href="JaVaScRiPt:alert(3)">mixed</a>',
    );
    expect(html.toLowerCase()).not.toContain("javascript:");
    for (const a of dom(html).querySelectorAll("a")) {
      expect(a.getAttribute("href") ?? "").not.toMatch(/script:/i);
    }
  });

  it("drops forms, iframes, styles, ids and ARIA roles from raw HTML", () => {
    const html = renderMarkdown(
      '<form action="/api/auth/logout/"><button>Submit</button><input name="x"></form>' +
        '<iframe src="https://example.org"></iframe><style>body{display:none}</style>' +
        '<p id="root" style="position:fixed" class="button" role="button" aria-label="Submit">text</p>',
    );
    const el = dom(html);
    expect(el.querySelector("form, button, input, iframe, style")).toBeNull();
    const p = el.querySelector("p")!;
    expect(p.textContent).toBe("text");
    expect(p.getAttributeNames()).toEqual([]);
  });

  it("opens links in a new tab with rel=noopener noreferrer", () => {
    const el = dom(renderMarkdown("See [docs](https://example.org/docs) and <https://example.com>."));
    const links = [...el.querySelectorAll("a")];
    expect(links).toHaveLength(2);
    for (const a of links) {
      expect(a.getAttribute("target")).toBe("_blank");
      expect(a.getAttribute("rel")).toBe("noopener noreferrer");
    }
    expect(links[0]!.getAttribute("href")).toBe("https://example.org/docs");
  });

  it("highlights fenced code blocks", () => {
    const el = dom(renderMarkdown("```python\ndef f(x):\n    return x + 1\n```"));
    const code = el.querySelector("pre code")!;
    expect(code.classList.contains("hljs")).toBe(true);
    expect(code.classList.contains("language-python")).toBe(true);
    expect(code.querySelector(".hljs-keyword")?.textContent).toBe("def");
    expect(code.textContent).toBe("def f(x):\n    return x + 1");
  });

  it("escapes code in unknown languages and keeps the hljs class", () => {
    const el = dom(renderMarkdown("```brainfuck\n<script>alert(1)</script>\n```"));
    const code = el.querySelector("pre code")!;
    expect(code.classList.contains("hljs")).toBe(true);
    expect(code.textContent).toBe("<script>alert(1)</script>");
    expect(el.querySelector("script")).toBeNull();
  });

  it("highlights unlabelled code blocks by detection", () => {
    const el = dom(renderMarkdown("```\nSELECT id, name FROM users WHERE id = 1;\n```"));
    expect(el.querySelector("pre code")!.classList.contains("hljs")).toBe(true);
  });

  it("renders task lists without form inputs", () => {
    const el = dom(renderMarkdown("- [x] done\n- [ ] todo"));
    expect(el.querySelector("input")).toBeNull();
    expect(el.textContent).toContain("☑ done");
    expect(el.textContent).toContain("☐ todo");
  });
});

describe("stripEventHandlers", () => {
  it("removes on* attributes from start tags only", async () => {
    const { stripEventHandlers } = await import("./markdown");
    expect(stripEventHandlers('<img src=x onerror="alert(1)">')).toBe("<img src=x >");
    expect(stripEventHandlers("<img alt='a > b' ONLOAD=go() src=y>")).toBe("<img alt='a > b'  src=y>");
    expect(stripEventHandlers('<div onclick="x()" class="a">say onload=1</div>')).toBe('<div  class="a">say onload=1</div>');
    expect(stripEventHandlers("<svg/onload=alert(1)>")).toBe("<svg/>");
    // Unterminated tags do not make the pattern backtrack for ages.
    const started = Date.now();
    stripEventHandlers("<a " + "b".repeat(20_000));
    stripEventHandlers("<a" + " b=c/".repeat(5_000));
    stripEventHandlers("<a" + "/ b".repeat(5_000));
    stripEventHandlers("<a ".repeat(30_000));
    stripEventHandlers("<a".repeat(50_000));
    stripEventHandlers('<a x="'.repeat(20_000));
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
