import type { ChatMessage } from "../api";
import { Markdown } from "../components/Markdown";

const ROLE_LABELS: Record<string, string> = { system: "System", user: "User", assistant: "Assistant" };

/** The prompt: every message of the conversation, in order, with its role. */
export function ConversationView({ messages }: { messages: ChatMessage[] }) {
  return (
    <section aria-label="Prompt" className="conversation">
      <h2 className="section-title">Prompt</h2>
      {messages.length === 0 ? (
        <p className="muted">This comparison has no prompt.</p>
      ) : (
        <ol className="messages">
          {messages.map((message, index) => (
            <li key={index} className={`message message-${ROLE_LABELS[message.role] ? message.role : "other"}`}>
              <span className="message-role">{ROLE_LABELS[message.role] ?? message.role}</span>
              <Markdown source={message.content} className="message-content" />
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
