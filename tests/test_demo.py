"""The offline demo plays its whole conversation, scripted and interactive."""

import io

from bot.devtools.demo import run_demo


def test_the_scripted_demo_shows_every_step():
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    assert "Alice (1:1): help" in text and "Here is what I can do" in text
    assert "Bot in Clinic: Hello!" in text
    assert "fields Subject, Hosts, Guests" in text
    assert "Bot in 1:1 with Alice: **Host links: Patient follow-up**" in text
    assert text.count("- **Guest ") == 2 and "https://instant.webex.com/visit/" in text
    assert "Dialling in: Exam Room 1, Cart 7" in text
    assert "already created" in text


def test_the_interactive_demo_takes_messages_and_fills_the_form():
    answers = "\n".join([
        "help", "@new", "y", "Knee check", "1", "2", "", "lab@clinic.example.com", "", "hc",
        "", "", "4h", "false", "meet Quick one guests=3", "",
    ]) + "\n"
    out = io.StringIO()
    assert run_demo(out, io.StringIO(answers)) == 0
    text = out.getvalue()
    assert "Here is what I can do" in text
    assert "**Meeting links: Knee check**" in text and "Dialling in: lab@clinic.example.com" in text
    assert "**Meeting links: Quick one**" in text and "- **Guest 3**" in text
