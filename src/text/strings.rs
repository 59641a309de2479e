//! Text mode's own strings in the widget's four locales (pure). They live here rather than in
//! [`crate::i18n`] so that the image-only bundle does not carry them; counts and plurals
//! ("3 discussions", "2 people here") come from `i18n`.

use crate::i18n::Locale;

/// Every human-readable string of text mode, in one language.
pub struct TextStrings {
    /// The prompt's primary button.
    pub discuss: &'static str,
    /// The prompt's copy button.
    pub copy: &'static str,
    /// The prompt's copy button once done.
    pub copied: &'static str,
    /// The prompt's cancel button.
    pub cancel: &'static str,
    /// The prompt's accessible name.
    pub prompt_label: &'static str,
    /// Announced when a selection in the article can be discussed.
    pub prompt_hint: &'static str,
    /// The top bar when the page has no discussion yet.
    pub empty_hint: &'static str,
    /// The list of discussions (its toggle's label).
    pub list: &'static str,
    /// The heading of discussions whose text is not found any more.
    pub changed: &'static str,
    /// The keyboard path to selecting text.
    pub select_keys: &'static str,
    /// Announced when keyboard selection starts: how to use it.
    pub select_help: &'static str,
    /// The top bar's accessible name.
    pub bar_label: &'static str,
    /// A quoted passage in the list: the quote, then the number of comments.
    pub quoted: &'static str,
    /// The selection is longer than a discussion may quote.
    pub too_long: &'static str,
    /// The selection holds no visible text.
    pub blank: &'static str,
}

const EN: TextStrings = TextStrings {
    discuss: "Discuss this text",
    copy: "Copy",
    copied: "Copied",
    cancel: "Cancel",
    prompt_label: "Selected text",
    prompt_hint: "Text selected. Press Enter to discuss it, Tab to reach the choices, Escape to dismiss.",
    empty_hint: "Select some text to start a discussion.",
    list: "Discussions",
    changed: "On text that changed",
    select_keys: "Select text with the keyboard",
    select_help: "Arrow keys move through the text, Shift with arrows selects, Ctrl moves by words. Enter discusses the selection, Escape stops.",
    bar_label: "Discussions on this page",
    quoted: "“{}” · {}",
    too_long: "This passage is too long to discuss: select a shorter one.",
    blank: "Select some words to discuss.",
};

const FR: TextStrings = TextStrings {
    discuss: "Discuter de ce texte",
    copy: "Copier",
    copied: "Copié",
    cancel: "Annuler",
    prompt_label: "Texte sélectionné",
    prompt_hint: "Texte sélectionné. Entrée pour en discuter, Tab pour les choix, Échap pour annuler.",
    empty_hint: "Sélectionnez du texte pour lancer une discussion.",
    list: "Discussions",
    changed: "Sur un texte qui a changé",
    select_keys: "Sélectionner du texte au clavier",
    select_help: "Les flèches parcourent le texte, Maj et flèches sélectionnent, Ctrl avance par mots. Entrée pour discuter de la sélection, Échap pour arrêter.",
    bar_label: "Discussions sur cette page",
    quoted: "« {} » · {}",
    too_long: "Ce passage est trop long : sélectionnez-en un plus court.",
    blank: "Sélectionnez quelques mots à discuter.",
};

const PT: TextStrings = TextStrings {
    discuss: "Discutir este texto",
    copy: "Copiar",
    copied: "Copiado",
    cancel: "Cancelar",
    prompt_label: "Texto selecionado",
    prompt_hint: "Texto selecionado. Enter para discuti-lo, Tab para as opções, Esc para fechar.",
    empty_hint: "Selecione um trecho para iniciar uma discussão.",
    list: "Discussões",
    changed: "Em texto que mudou",
    select_keys: "Selecionar texto pelo teclado",
    select_help: "As setas percorrem o texto, Shift com as setas seleciona, Ctrl avança por palavras. Enter discute a seleção, Esc termina.",
    bar_label: "Discussões nesta página",
    quoted: "“{}” · {}",
    too_long: "Este trecho é longo demais: selecione um menor.",
    blank: "Selecione algumas palavras para discutir.",
};

const RU: TextStrings = TextStrings {
    discuss: "Обсудить этот текст",
    copy: "Копировать",
    copied: "Скопировано",
    cancel: "Отмена",
    prompt_label: "Выделенный текст",
    prompt_hint: "Текст выделен. Enter — обсудить, Tab — к кнопкам, Escape — закрыть.",
    empty_hint: "Выделите текст, чтобы начать обсуждение.",
    list: "Обсуждения",
    changed: "К изменившемуся тексту",
    select_keys: "Выделить текст с клавиатуры",
    select_help: "Стрелки перемещают по тексту, Shift со стрелками выделяет, Ctrl — по словам. Enter — обсудить выделенное, Escape — выйти.",
    bar_label: "Обсуждения на этой странице",
    quoted: "«{}» · {}",
    too_long: "Этот фрагмент слишком длинный: выделите покороче.",
    blank: "Выделите несколько слов для обсуждения.",
};

/// Text mode's strings in `locale`.
pub fn strings(locale: Locale) -> &'static TextStrings {
    match locale {
        Locale::En => &EN,
        Locale::Fr => &FR,
        Locale::Pt => &PT,
        Locale::Ru => &RU,
    }
}

/// A discussion's entry in the top bar's list: its quote (one line, at most 48 characters)
/// and how many comments it has.
pub fn list_entry(locale: Locale, quote: &str, comments: usize) -> String {
    const MAX: usize = 48;
    let one_line = quote.split_whitespace().collect::<Vec<_>>().join(" ");
    let short = if one_line.chars().count() <= MAX {
        one_line
    } else {
        one_line.chars().take(MAX - 1).collect::<String>() + "…"
    };
    crate::i18n::fill(
        strings(locale).quoted,
        &[&short, &locale.comments(comments)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_locale_has_every_string() {
        for locale in [Locale::En, Locale::Fr, Locale::Pt, Locale::Ru] {
            let s = strings(locale);
            for text in [
                s.discuss,
                s.copy,
                s.copied,
                s.cancel,
                s.prompt_label,
                s.prompt_hint,
                s.empty_hint,
                s.list,
                s.changed,
                s.select_keys,
                s.select_help,
                s.bar_label,
                s.too_long,
                s.blank,
            ] {
                assert!(!text.trim().is_empty());
            }
            assert_eq!(s.quoted.matches("{}").count(), 2);
        }
        assert_eq!(
            strings(Locale::En).empty_hint,
            "Select some text to start a discussion."
        );
    }

    #[test]
    fn list_entries_quote_one_short_line() {
        let entry = list_entry(Locale::En, "  the quick\nbrown   fox ", 2);
        assert_eq!(entry, "“the quick brown fox” · 2 comments");
        let long = list_entry(Locale::En, &"word ".repeat(40), 1);
        assert!(long.contains('…'));
        assert!(long.chars().count() < 48 + 20);
        // French quotes its own way; the comment count's words come from the French table,
        // which is a lazily loaded chunk (`crate::locales`), so only the quote is checked here.
        assert!(list_entry(Locale::Fr, "texte", 3).starts_with("« texte » · 3 "));
    }
}
