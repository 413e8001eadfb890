"""What a chat line says, per event type, in English, German, French and Italian. A sink's own
``templates`` override these one by one; every language names every template (checked at import).

Numbers in the fields are written for the language by the renderer (``12'304``), words the rules
hold as codes (``yes``, ``people``) arrive already translated."""

from __future__ import annotations

TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "race_called": "{state_name}: {caller} calls {race} for {candidate} ({party}): {share}%, "
        "{precincts_reporting_pct}% of precincts reporting",
        "call_changed": "{state_name}: {caller} changed its call in {race}: {candidate} ({party}), "
        "not {old_candidate}",
        "call_retracted": "{state_name}: {caller} retracted its call in {race} "
        "(was {old_candidate}, {old_party})",
        "call_pending": "{state_name}: AP calls {race} for {candidate} ({party}): HELD for the desk "
        "(pollerd calls accept {key})",
        "call_conflict": "{state_name}: CALL CONFLICT in {race}: AP {ap_says}; the desk calls it for "
        "{desk_candidate} ({desk_party}), and that call stands",
        "runoff": "{state_name}: {race} goes to a runoff: {candidates}",
        "race_complete": "{state_name}: all precincts reporting in {race}",
        "votes_counted": "{state_name}: {race}: {votes_added} more votes counted ({batch_shares}); "
        "{leader} leads by {margin_votes} ({margin_points} pts), {precincts_reporting_pct}% of precincts",
        "votes_corrected": "{state_name}: {race}: AP corrected the count by {votes_added} votes "
        "({batch_shares}); {leader} leads by {margin_votes} ({margin_points} pts)",
        "lead_changed": "{state_name}: {race}: {candidate} ({party}) now leads, by {margin_votes} votes "
        "({margin_points} pts), ahead of {old_candidate}",
        "expected_vote": "{state_name}: {race}: {mark}% of the expected vote counted",
        "race_status_changed": "{state_name}: {race}: AP now says {race_call_status} "
        "(was {old_race_call_status})",
        "canton_complete": "{canton_name} finished counting ({ballot}, {gemeinden_abgeschlossen} communes)",
        "canton_reopened": "{canton_name} reopened its count: a correction ({ballot}); finished before, "
        "{gemeinden_abgeschlossen} of {gemeinden_total} communes now",
        "canton_progress": "{canton_name}: {gemeinden_abgeschlossen} of {gemeinden_total} communes "
        "counted ({ballot}): {running}",
        "count_corrected": "{canton_name}: finished figures corrected ({ballot}, {file})",
        "result_final": "{ballot}: every canton counted, the result is complete",
        "proposal_decided": "{proposal}: {outcome}, {yes_pct}% yes",
        "deciding_question": "{proposal}: {outcome_of_question}, {standing}; {in_force}",
        "majority_changed": "{proposal}: {what} now say {side} ({standing})",
        "ballot_cancelled": "{ballot_title}: ballot cancelled ({why}); replaced by {replaced_by}",
        "candidate_added": "{ballot_title}: candidate added: {candidate} ({party})",
        "candidate_withdrawn": "{ballot_title}: candidate withdrawn: {candidate} ({party})",
        "polling_station_changed": "Polling station for {date} ({where}) is now {station}; was {old_station}",
        "election_withdrawn": "{election_title}: election withdrawn",
        "versions": "{source}/{resource}: version {sequence}",
        "initial": "(as first seen) {line}",
        "group": "{count} election events",
        "favours": "the deciding question favours {favours}",
        "in_force": "{in_force} comes into force",
        "in_force_none": "neither comes into force",
        "section_called": "Called",
        "section_retracted": "Retracted / conflicts",
        "section_leads": "Leads changed",
        "section_completed": "Completed",
        "section_counts": "Counts",
        "section_other": "Also",
        "more": "and {count} more",
    },
    "de": {
        "race_called": "{state_name}: {caller} ruft {race} für {candidate} ({party}) aus: {share} %, "
        "{precincts_reporting_pct} % der Wahlbezirke ausgezählt",
        "call_changed": "{state_name}: {caller} ändert den Ausruf in {race}: {candidate} ({party}), "
        "nicht {old_candidate}",
        "call_retracted": "{state_name}: {caller} zieht den Ausruf in {race} zurück "
        "(war {old_candidate}, {old_party})",
        "call_pending": "{state_name}: AP ruft {race} für {candidate} ({party}) aus: ZURÜCKGEHALTEN für den "
        "Desk (pollerd calls accept {key})",
        "call_conflict": "{state_name}: WIDERSPRUCH in {race}: AP {ap_says}; der Desk ruft es für "
        "{desk_candidate} ({desk_party}) aus, und das gilt",
        "runoff": "{state_name}: {race} geht in die Stichwahl: {candidates}",
        "race_complete": "{state_name}: alle Wahlbezirke ausgezählt in {race}",
        "votes_counted": "{state_name}: {race}: {votes_added} weitere Stimmen ausgezählt ({batch_shares}); "
        "{leader} führt mit {margin_votes} ({margin_points} Pkt.), "
        "{precincts_reporting_pct} % der Wahlbezirke",
        "votes_corrected": "{state_name}: {race}: AP korrigiert die Zählung um {votes_added} Stimmen "
        "({batch_shares}); {leader} führt mit {margin_votes} ({margin_points} Pkt.)",
        "lead_changed": "{state_name}: {race}: {candidate} ({party}) führt jetzt, mit {margin_votes} Stimmen "
        "({margin_points} Pkt.) vor {old_candidate}",
        "expected_vote": "{state_name}: {race}: {mark} % der erwarteten Stimmen ausgezählt",
        "race_status_changed": "{state_name}: {race}: AP sagt jetzt {race_call_status} "
        "(vorher {old_race_call_status})",
        "canton_complete": "{canton_name} hat fertig ausgezählt ({ballot}, "
        "{gemeinden_abgeschlossen} Gemeinden)",
        "canton_reopened": "{canton_name} zählt wieder: eine Korrektur ({ballot}); war fertig, jetzt "
        "{gemeinden_abgeschlossen} von {gemeinden_total} Gemeinden",
        "canton_progress": "{canton_name}: {gemeinden_abgeschlossen} von {gemeinden_total} Gemeinden "
        "ausgezählt ({ballot}): {running}",
        "count_corrected": "{canton_name}: Schlussresultat korrigiert ({ballot}, {file})",
        "result_final": "{ballot}: alle Kantone ausgezählt, das Resultat ist vollständig",
        "proposal_decided": "{proposal}: {outcome}, {yes_pct} % Ja",
        "deciding_question": "{proposal}: {outcome_of_question}, {standing}; {in_force}",
        "majority_changed": "{proposal}: {what} sagt jetzt {side} ({standing})",
        "ballot_cancelled": "{ballot_title}: Wahl abgesagt ({why}); ersetzt durch {replaced_by}",
        "candidate_added": "{ballot_title}: Kandidatur hinzugefügt: {candidate} ({party})",
        "candidate_withdrawn": "{ballot_title}: Kandidatur zurückgezogen: {candidate} ({party})",
        "polling_station_changed": "Wahllokal für {date} ({where}) ist jetzt {station}; vorher {old_station}",
        "election_withdrawn": "{election_title}: Wahl zurückgezogen",
        "versions": "{source}/{resource}: Version {sequence}",
        "initial": "(beim ersten Abruf) {line}",
        "group": "{count} Meldungen",
        "favours": "die Stichfrage bevorzugt {favours}",
        "in_force": "{in_force} tritt in Kraft",
        "in_force_none": "keine der Vorlagen tritt in Kraft",
        "section_called": "Ausgerufen",
        "section_retracted": "Zurückgezogen / Widersprüche",
        "section_leads": "Neue Führung",
        "section_completed": "Abgeschlossen",
        "section_counts": "Auszählung",
        "section_other": "Weiter",
        "more": "und {count} weitere",
    },
    "fr": {
        "race_called": "{state_name} : {caller} donne {race} à {candidate} ({party}) : {share} %, "
        "{precincts_reporting_pct} % des bureaux dépouillés",
        "call_changed": "{state_name} : {caller} change son annonce pour {race} : {candidate} ({party}), "
        "et non {old_candidate}",
        "call_retracted": "{state_name} : {caller} retire son annonce pour {race} "
        "(c'était {old_candidate}, {old_party})",
        "call_pending": "{state_name} : AP donne {race} à {candidate} ({party}) : EN ATTENTE de la "
        "rédaction (pollerd calls accept {key})",
        "call_conflict": "{state_name} : CONFLIT pour {race} : AP {ap_says} ; la rédaction donne "
        "{desk_candidate} ({desk_party}), et c'est ce qui vaut",
        "runoff": "{state_name} : {race} ira au second tour : {candidates}",
        "race_complete": "{state_name} : tous les bureaux dépouillés pour {race}",
        "votes_counted": "{state_name} : {race} : {votes_added} voix de plus ({batch_shares}) ; "
        "{leader} mène de {margin_votes} ({margin_points} pts), {precincts_reporting_pct} % des bureaux",
        "votes_corrected": "{state_name} : {race} : AP corrige le décompte de {votes_added} voix "
        "({batch_shares}) ; {leader} mène de {margin_votes} ({margin_points} pts)",
        "lead_changed": "{state_name} : {race} : {candidate} ({party}) passe en tête, de {margin_votes} voix "
        "({margin_points} pts), devant {old_candidate}",
        "expected_vote": "{state_name} : {race} : {mark} % des voix attendues dépouillées",
        "race_status_changed": "{state_name} : {race} : AP dit désormais {race_call_status} "
        "(avant : {old_race_call_status})",
        "canton_complete": "{canton_name} a fini de dépouiller ({ballot}, "
        "{gemeinden_abgeschlossen} communes)",
        "canton_reopened": "{canton_name} rouvre son dépouillement : une correction ({ballot}) ; terminé "
        "avant, {gemeinden_abgeschlossen} communes sur {gemeinden_total} maintenant",
        "canton_progress": "{canton_name} : {gemeinden_abgeschlossen} communes sur {gemeinden_total} "
        "dépouillées ({ballot}) : {running}",
        "count_corrected": "{canton_name} : résultats définitifs corrigés ({ballot}, {file})",
        "result_final": "{ballot} : tous les cantons dépouillés, le résultat est complet",
        "proposal_decided": "{proposal} : objet {outcome}, {yes_pct} % de oui",
        "deciding_question": "{proposal} : {outcome_of_question}, {standing} ; {in_force}",
        "majority_changed": "{proposal} : {what} dit désormais {side} ({standing})",
        "ballot_cancelled": "{ballot_title} : scrutin annulé ({why}) ; remplacé par {replaced_by}",
        "candidate_added": "{ballot_title} : candidature ajoutée : {candidate} ({party})",
        "candidate_withdrawn": "{ballot_title} : candidature retirée : {candidate} ({party})",
        "polling_station_changed": "Bureau de vote du {date} ({where}) : désormais {station} ; "
        "avant : {old_station}",
        "election_withdrawn": "{election_title} : élection retirée",
        "versions": "{source}/{resource} : version {sequence}",
        "initial": "(à la première lecture) {line}",
        "group": "{count} nouvelles",
        "favours": "la question subsidiaire favorise {favours}",
        "in_force": "{in_force} entre en vigueur",
        "in_force_none": "aucun des deux objets n'entre en vigueur",
        "section_called": "Annoncés",
        "section_retracted": "Retirés / conflits",
        "section_leads": "Changements en tête",
        "section_completed": "Terminés",
        "section_counts": "Dépouillement",
        "section_other": "Aussi",
        "more": "et {count} de plus",
    },
    "it": {
        "race_called": "{state_name}: {caller} assegna {race} a {candidate} ({party}): {share} %, "
        "{precincts_reporting_pct} % dei seggi scrutinati",
        "call_changed": "{state_name}: {caller} cambia l'assegnazione in {race}: {candidate} ({party}), "
        "non {old_candidate}",
        "call_retracted": "{state_name}: {caller} ritira l'assegnazione in {race} "
        "(era {old_candidate}, {old_party})",
        "call_pending": "{state_name}: AP assegna {race} a {candidate} ({party}): IN ATTESA della "
        "redazione (pollerd calls accept {key})",
        "call_conflict": "{state_name}: CONFLITTO in {race}: AP {ap_says}; la redazione assegna "
        "{desk_candidate} ({desk_party}), e vale questo",
        "runoff": "{state_name}: {race} va al ballottaggio: {candidates}",
        "race_complete": "{state_name}: tutti i seggi scrutinati in {race}",
        "votes_counted": "{state_name}: {race}: altri {votes_added} voti scrutinati ({batch_shares}); "
        "{leader} in testa di {margin_votes} ({margin_points} punti), {precincts_reporting_pct} % dei seggi",
        "votes_corrected": "{state_name}: {race}: AP corregge il conteggio di {votes_added} voti "
        "({batch_shares}); {leader} in testa di {margin_votes} ({margin_points} punti)",
        "lead_changed": "{state_name}: {race}: {candidate} ({party}) passa in testa, di {margin_votes} voti "
        "({margin_points} punti), davanti a {old_candidate}",
        "expected_vote": "{state_name}: {race}: scrutinato il {mark} % dei voti attesi",
        "race_status_changed": "{state_name}: {race}: AP ora dice {race_call_status} "
        "(prima {old_race_call_status})",
        "canton_complete": "{canton_name} ha terminato lo spoglio ({ballot}, "
        "{gemeinden_abgeschlossen} comuni)",
        "canton_reopened": "{canton_name} riapre lo spoglio: una correzione ({ballot}); era terminato, ora "
        "{gemeinden_abgeschlossen} comuni su {gemeinden_total}",
        "canton_progress": "{canton_name}: {gemeinden_abgeschlossen} comuni su {gemeinden_total} "
        "scrutinati ({ballot}): {running}",
        "count_corrected": "{canton_name}: risultati definitivi corretti ({ballot}, {file})",
        "result_final": "{ballot}: tutti i cantoni scrutinati, il risultato è completo",
        "proposal_decided": "{proposal}: oggetto {outcome}, {yes_pct} % di sì",
        "deciding_question": "{proposal}: {outcome_of_question}, {standing}; {in_force}",
        "majority_changed": "{proposal}: {what} ora dice {side} ({standing})",
        "ballot_cancelled": "{ballot_title}: scrutinio annullato ({why}); sostituito da {replaced_by}",
        "candidate_added": "{ballot_title}: candidatura aggiunta: {candidate} ({party})",
        "candidate_withdrawn": "{ballot_title}: candidatura ritirata: {candidate} ({party})",
        "polling_station_changed": "Seggio del {date} ({where}): ora {station}; prima {old_station}",
        "election_withdrawn": "{election_title}: elezione ritirata",
        "versions": "{source}/{resource}: versione {sequence}",
        "initial": "(alla prima lettura) {line}",
        "group": "{count} notizie",
        "favours": "la domanda risolutiva favorisce {favours}",
        "in_force": "{in_force} entra in vigore",
        "in_force_none": "nessuno dei due oggetti entra in vigore",
        "section_called": "Assegnati",
        "section_retracted": "Ritirati / conflitti",
        "section_leads": "Cambi in testa",
        "section_completed": "Conclusi",
        "section_counts": "Spoglio",
        "section_other": "Inoltre",
        "more": "e altri {count}",
    },
}
